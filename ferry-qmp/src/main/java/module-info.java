/**
 * Ferry's QMP monitor: server and client of QEMU's machine protocol, the HMP command line, and the
 * QAPI-shaped records they exchange. A client of the engine ({@code dev.ferry.core}).
 */
module dev.ferry.qmp {
  requires transitive dev.ferry.core;
  requires transitive com.fasterxml.jackson.databind;
  requires HdrHistogram;

  exports dev.ferry.qmp;
  exports dev.ferry.qmp.engine;
  exports dev.ferry.qmp.hmp;
  exports dev.ferry.qmp.qapi;

  // Jackson reads and writes the QAPI records by reflection
  opens dev.ferry.qmp.qapi to com.fasterxml.jackson.databind;
  opens dev.ferry.qmp to com.fasterxml.jackson.databind;
}
