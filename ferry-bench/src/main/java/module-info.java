/** Ferry's JMH micro benchmarks and its end-to-end benchmark driver. */
module dev.ferry.bench {
  requires dev.ferry.core;
  requires dev.ferry.qmp;
  requires dev.ferry.cli;
  requires jmh.core;
  requires HdrHistogram;
  requires java.management;
  requires jdk.management; // process CPU time (BlockMigrationBench)

  exports dev.ferry.bench;
  exports dev.ferry.bench.jmh_generated;
}
