package dev.ferry.stream;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The one escaper, in QEMU's and Python's style: where they agree and where they differ. */
class JsonStringsTest {
  private static final String INPUT = "a\"b\\c/d\b\f\n\r\t\u0001\u001f\u007f\u00e9\u20ac\ud83d\ude00";

  @Test
  void qemuStyleIsQemu72sJsonWriter() {
    assertThat(JsonStrings.quote(INPUT, JsonStrings.Style.QEMU))
        .isEqualTo("\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001F\\u007F\\u00E9\\u20AC\\uD83D\\uDE00\"");
  }

  @Test
  void pythonStyleIsJsonDumpsWithEnsureAscii() {
    // json.dumps("a\"b\\c/d\b\f\n\r\t\x01\x1f\x7f\xe9\u20ac\U0001F600")
    assertThat(JsonStrings.quote(INPUT, JsonStrings.Style.PYTHON))
        .isEqualTo("\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\\u0001\\u001f\u007f\\u00e9\\u20ac\\ud83d\\ude00\"");
  }

  @Test
  void theVmdescWriterUsesIt() {
    QemuJsonWriter w = new QemuJsonWriter().beginObject().name("n\u00e9").value("0000:00:01.1/ide").endObject();
    assertThat(w.toString()).isEqualTo("{\"n\\u00E9\": \"0000:00:01.1/ide\"}");
  }
}
