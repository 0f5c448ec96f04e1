/** The {@code ferry} command: run, migrate, demo, analyze, vmstate, soak. */
module dev.ferry.cli {
  requires dev.ferry.core;
  requires dev.ferry.qmp;
  requires info.picocli;
  requires org.jline;

  exports dev.ferry.cli;
  exports dev.ferry.cli.analyze;
  exports dev.ferry.cli.live;
  exports dev.ferry.cli.soak;

  // picocli fills the commands' option fields by reflection
  opens dev.ferry.cli to info.picocli;
  opens dev.ferry.cli.analyze to info.picocli;
  opens dev.ferry.cli.live to info.picocli;
  opens dev.ferry.cli.soak to info.picocli;
}
