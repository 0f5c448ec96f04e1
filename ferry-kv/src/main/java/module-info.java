/**
 * ferry-kv: a Redis-protocol (RESP2) key-value server whose keyspace lives in Ferry guest RAM,
 * built on Ferry's public API ({@code dev.ferry.api}, {@code dev.ferry.vmstate}) and run by {@code
 * ferry run}'s machinery ({@code dev.ferry.cli.RunCommand.runService}) so that {@code ferry migrate}
 * moves it live.
 */
module dev.ferry.kv {
  requires dev.ferry.core;
  requires dev.ferry.cli;
  requires info.picocli;

  exports dev.ferry.kv;
  exports dev.ferry.kv.resp;
  exports dev.ferry.kv.store;

  // picocli fills the command's option fields by reflection
  opens dev.ferry.kv to info.picocli;
}
