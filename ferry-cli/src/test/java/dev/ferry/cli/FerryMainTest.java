package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@link FerryMain#SUBCOMMANDS} (what builds only the command that runs) lists what the annotation lists. */
class FerryMainTest {
  @Test
  void theSubcommandMapEqualsTheAnnotationsList() {
    Map<String, Class<?>> annotated =
        Arrays.stream(FerryMain.class.getAnnotation(CommandLine.Command.class).subcommands())
            .filter(c -> c != CommandLine.HelpCommand.class)
            .collect(Collectors.toMap(c -> c.getAnnotation(CommandLine.Command.class).name(), c -> c));
    assertThat(FerryMain.SUBCOMMANDS).isEqualTo(annotated);
  }
}
