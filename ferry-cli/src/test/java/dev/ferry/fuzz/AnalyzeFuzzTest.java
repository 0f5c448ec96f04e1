package dev.ferry.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.ferry.cli.analyze.StreamAnalyzer;
import dev.ferry.savevm.StreamReader;
import dev.ferry.stream.MigrationInput;
import java.io.IOException;

/**
 * Fuzzes the {@code ferry analyze} walker: header, configuration, every section (RAM decoded into
 * capped allocated blocks, devices skipped by their footers), commands and tail. Only an {@link
 * IOException} (a MigrationStreamException) may come out. Seeds: {@code AnalyzeFuzzTestInputs/analyze/}.
 */
class AnalyzeFuzzTest {
  private static final long MAX_RAM_BYTES = 4L << 20;

  @FuzzTest(maxDuration = "2m")
  void analyze(byte[] data) {
    try (StreamAnalyzer a = new StreamAnalyzer(null, data.length, true, MAX_RAM_BYTES)) {
      a.analyze(MigrationInput.of(data), StreamReader.Options.DEFAULT);
    } catch (IOException expected) {
      assertThat(expected.getMessage()).isNotBlank();
    }
  }
}
