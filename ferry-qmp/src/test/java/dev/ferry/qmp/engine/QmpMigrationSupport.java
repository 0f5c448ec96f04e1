package dev.ferry.qmp.engine;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.qmp.QmpDispatcher;
import dev.ferry.qmp.QmpError;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Migrations driven over QMP in-process, as the engine tests of this package do it. */
final class QmpMigrationSupport {
  private QmpMigrationSupport() {}

  /** The arguments of {@code migrate-set-capabilities} turning {@code names} on. */
  static ObjectNode caps(String... names) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    var a = o.putArray("capabilities");
    for (String n : names) {
      a.addObject().put("capability", n).put("state", true);
    }
    return o;
  }

  /** The {@code status} of {@code query-migrate}. */
  static String status(QmpDispatcher q) {
    try {
      return q.execute("query-migrate", null).path("status").asText();
    } catch (QmpError e) {
      throw new AssertionError(e);
    }
  }

  /** Polls {@code c} every 10 ms until it holds; fails after {@code seconds}. */
  static void awaitTrue(long seconds, BooleanSupplier c) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!c.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not reached in " + seconds + " s");
      }
      Thread.sleep(10);
    }
  }
}
