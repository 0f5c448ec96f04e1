package dev.ferry.kv.resp;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class RespWriterTest {
  @Test
  void encodesEveryReplyKindAsRedisDoes() {
    RespWriter w = new RespWriter();
    w.simple("OK").error("ERR bad\r\nthing").integer(-42).bulk(new byte[] {'a', 0, '\r'}).nullBulk().array(2).bulk("x").integer(1).nullArray();
    assertThat(new String(w.toByteArray(), StandardCharsets.ISO_8859_1))
        .isEqualTo("+OK\r\n-ERR bad  thing\r\n:-42\r\n$3\r\na\0\r\r\n$-1\r\n*2\r\n$1\r\nx\r\n:1\r\n*-1\r\n");
  }

  @Test
  void aWrittenCommandReadsBack() {
    RespWriter w = new RespWriter();
    byte[] key = {0, '\n', (byte) 0x80};
    w.array(3).bulk("SET").bulk(key).bulk("v");
    RespReader r = new RespReader();
    r.feed(w.toByteArray());
    RespRequest.Command c = (RespRequest.Command) r.next();
    assertThat(c.args().get(1)).isEqualTo(key);
  }
}
