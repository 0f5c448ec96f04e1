package dev.ferry.savevm;

import dev.ferry.stream.MigrationInput;
import dev.ferry.stream.MigrationOutput;
import dev.ferry.stream.QemuJsonWriter;
import dev.ferry.vmstate.VMStateDescription;
import java.io.IOException;

/**
 * A {@link SaveStateEntry} that forwards every method to another; a wrapper overrides only what it
 * changes. Every method of the interface is forwarded here, so a wrapper cannot silently drop one
 * (a lost {@link #priority()} reorders the sections).
 */
public abstract class ForwardingSaveStateEntry implements SaveStateEntry {
  private final SaveStateEntry delegate;

  protected ForwardingSaveStateEntry(SaveStateEntry delegate) {
    this.delegate = delegate;
  }

  /** The entry this one forwards to. */
  protected final SaveStateEntry delegate() {
    return delegate;
  }

  @Override
  public String idstr() {
    return delegate.idstr();
  }

  @Override
  public int instanceId() {
    return delegate.instanceId();
  }

  @Override
  public int version() {
    return delegate.version();
  }

  @Override
  public int saveVersion() {
    return delegate.saveVersion();
  }

  @Override
  public int priority() {
    return delegate.priority();
  }

  @Override
  public boolean needed() {
    return delegate.needed();
  }

  @Override
  public VMStateDescription<?> vmstateDescription() {
    return delegate.vmstateDescription();
  }

  @Override
  public void save(MigrationOutput out, QemuJsonWriter desc) throws IOException {
    delegate.save(out, desc);
  }

  @Override
  public void load(MigrationInput in, int version) throws IOException {
    delegate.load(in, version);
  }
}
