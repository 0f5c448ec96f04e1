package dev.ferry.qmp;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The one size grammar of the command line and the human monitor. */
class SizesTest {
  @ParameterizedTest
  @CsvSource({
    "4096, B, 4096",
    "64, M, 67108864",
    "64M, B, 67108864",
    "64m, B, 67108864",
    "64MiB, B, 67108864",
    "64MB, B, 67108864",
    "1.5G, B, 1610612736",
    "1.5K, B, 1536",
    "2T, B, 2199023255552",
    "512b, M, 512",
    "0, B, 0",
    "' 1G ', B, 1073741824",
  })
  void sizes(String text, char unit, long bytes) {
    assertThat(Sizes.parse(text, unit)).isEqualTo(bytes);
  }

  @Test
  void rates() {
    assertThat(Sizes.parseRate("512K/s")).isEqualTo(512L << 10);
    assertThat(Sizes.parseRate("64M")).isEqualTo(64L << 20);
    assertThat(Sizes.parseRate("1000")).isEqualTo(1000);
    assertThat(Sizes.parseRate("0")).isEqualTo(0);
  }

  @Test
  void oneErrorTextNamingTheValue() {
    assertThatThrownBy(() -> Sizes.parse("12x", 'B')).isInstanceOf(NumberFormatException.class)
        .hasMessage("'12x' is not a size: use a number with an optional suffix B, K, M, G, T, P or E (powers of 1024), e.g. 64M, 1.5G, 4096");
    assertThatThrownBy(() -> Sizes.parse("-1", 'B')).hasMessageStartingWith("'-1' is not a size");
    assertThatThrownBy(() -> Sizes.parse("", 'B')).hasMessageStartingWith("'' is not a size");
    assertThatThrownBy(() -> Sizes.parse("1.5B", 'B')).hasMessage("'1.5B' is not a size: a number of bytes has no fraction");
    assertThatThrownBy(() -> Sizes.parse("1.5", 'B')).hasMessage("'1.5' is not a size: a number of bytes has no fraction");
    assertThatThrownBy(() -> Sizes.parse("9E", 'B')).hasMessage("'9E' is too large (at most 8E - 1 bytes)");
    assertThatThrownBy(() -> Sizes.parseRate("fast")).hasMessageStartingWith("'fast' is not a rate: use a number")
        .hasMessageEndingWith(", optionally followed by /s");
  }

  @Test
  void formats() {
    assertThat(Sizes.exact(64L << 20)).isEqualTo("64 MiB");
    assertThat(Sizes.exact(1536L << 10)).isEqualTo("1536 KiB");
    assertThat(Sizes.exact(1000)).isEqualTo("1000 B");
    assertThat(Sizes.human(1L << 30)).isEqualTo("1 GiB");
    assertThat(Sizes.human(1.37 * (1L << 30))).isEqualTo("1.37 GiB");
  }
}
