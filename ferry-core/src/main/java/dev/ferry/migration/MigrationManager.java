package dev.ferry.migration;

import dev.ferry.migration.multifd.MultifdReceiver;
import dev.ferry.savevm.Configuration;
import dev.ferry.savevm.SaveOptions;
import dev.ferry.savevm.SaveStateRegistry;
import dev.ferry.savevm.StateLoader;
import dev.ferry.savevm.StreamReader;
import dev.ferry.transport.Authz;
import dev.ferry.transport.MigrationChannel;
import dev.ferry.transport.MigrationUri;
import dev.ferry.transport.TlsChannel;
import dev.ferry.transport.TlsCredentials;
import dev.ferry.transport.TlsHandshakeException;
import dev.ferry.transport.TlsObjects;
import dev.ferry.transport.TransportListener;
import dev.ferry.transport.Transports;
import java.io.IOException;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One process's migration control (QEMU's MigrationState singleton with options.c): the
 * capabilities and parameters, the current or last outgoing migration, and incoming migrations.
 * The monitor and the CLI drive it; it is thread-safe.
 */
public final class MigrationManager {
  private static final Logger LOG = LoggerFactory.getLogger(MigrationManager.class);
  private final SaveStateRegistry registry;
  private final MigrationVm vm;
  private final Configuration config;
  private final MigrationState outgoingState = new MigrationState("outgoing");
  private final MigrationState incomingState = new MigrationState("incoming");
  private final EnumMap<MigrationCapability, Boolean> caps = new EnumMap<>(MigrationCapability.class);
  private final CopyOnWriteArrayList<Consumer<OutgoingMigration>> beforeStart = new CopyOnWriteArrayList<>();
  private final CopyOnWriteArrayList<Consumer<IncomingMigration>> beforeIncoming = new CopyOnWriteArrayList<>();
  private volatile MigrationParameters params = MigrationParameters.DEFAULT;
  private volatile OutgoingMigration outgoing;
  private volatile IncomingMigration incoming;
  private volatile IncomingMigration.LoadCheck loadCheck = loader -> {};
  private final TlsObjects objects = new TlsObjects();
  private volatile Consumer<String> refusedListener = m -> LOG.warn("{}", m);

  public MigrationManager(SaveStateRegistry registry, MigrationVm vm, Configuration config) {
    this.registry = registry;
    this.vm = vm;
    this.config = config;
    for (MigrationCapability c : MigrationCapability.values()) {
      caps.put(c, false);
    }
  }

  /** Observes both directions' status changes and passes. */
  public void addListener(MigrationListener l) {
    outgoingState.addListener(l);
    incomingState.addListener(l);
  }

  /** Called with each new outgoing migration before its thread starts (RAM options, stats). */
  public void beforeStart(Consumer<OutgoingMigration> hook) {
    beforeStart.add(hook);
  }

  /** Called with each new incoming migration before it loads (postcopy wiring). */
  public void beforeIncoming(Consumer<IncomingMigration> hook) {
    beforeIncoming.add(hook);
  }

  /**
   * migrate-start-postcopy with QEMU 7.2's rules and texts.
   *
   * @throws IllegalStateException with QEMU's message when postcopy-ram is off or no migration started
   */
  public void startPostcopy() {
    if (!capability(MigrationCapability.POSTCOPY_RAM)) {
      throw new IllegalStateException("Enable postcopy with migrate_set_capability before the start of migration");
    }
    OutgoingMigration o = outgoing;
    if (o == null || outgoingState.status() == MigrationStatus.NONE) {
      throw new IllegalStateException("Postcopy must be started after migration has been started");
    }
    o.startPostcopy(); // as QEMU: just a flag, no error once the migration has ended
  }

  /**
   * migrate-continue: releases an outgoing migration waiting in {@code pre-switchover}
   * (pause-before-switchover).
   *
   * @throws IllegalStateException with QEMU's text when the migration is not in {@code expected}
   */
  public void migrateContinue(MigrationStatus expected) {
    OutgoingMigration o = outgoing;
    if (o == null) {
      throw new IllegalStateException("Migration not in expected state: " + outgoingState.status().qapiName());
    }
    o.continueFromPause(expected);
  }

  public Configuration configuration() {
    return config;
  }

  public synchronized Map<MigrationCapability, Boolean> capabilities() {
    return new EnumMap<>(caps);
  }

  public synchronized boolean capability(MigrationCapability c) {
    return caps.get(c);
  }

  /**
   * Sets capabilities, all or nothing.
   *
   * @throws IllegalArgumentException for an unsupported capability turned on
   * @throws IllegalStateException while a migration is active
   */
  public synchronized void setCapabilities(Map<MigrationCapability, Boolean> changes) {
    if (outgoingState.status().isActive() || incomingState.status().isActive()) {
      throw new IllegalStateException("There's a migration process in progress");
    }
    for (Map.Entry<MigrationCapability, Boolean> e : changes.entrySet()) {
      if (e.getValue() && !e.getKey().supported()) {
        throw new IllegalArgumentException("Capability '" + e.getKey().qapiName() + "' is not supported by Ferry");
      }
    }
    EnumMap<MigrationCapability, Boolean> next = new EnumMap<>(caps);
    next.putAll(changes);
    if (next.get(MigrationCapability.FERRY_AUTO_POSTCOPY) && !next.get(MigrationCapability.POSTCOPY_RAM)) {
      throw new IllegalArgumentException("ferry-auto-postcopy requires postcopy-ram");
    }
    if (next.get(MigrationCapability.MULTIFD)) {
      // QEMU's texts (compress: 7.2; xbzrle: 9.x — 7.2 silently bypassed xbzrle for multifd pages)
      if (next.get(MigrationCapability.COMPRESS)) {
        throw new IllegalArgumentException("Multifd is not compatible with compress");
      }
      if (next.get(MigrationCapability.XBZRLE)) {
        throw new IllegalArgumentException("Multifd is not compatible with xbzrle");
      }
    }
    if (next.get(MigrationCapability.MAPPED_RAM)) {
      // QEMU 9.0's migrate_caps_check texts
      if (next.get(MigrationCapability.XBZRLE)) {
        throw new IllegalArgumentException("Mapped-ram migration is incompatible with xbzrle");
      }
      if (next.get(MigrationCapability.COMPRESS)) {
        throw new IllegalArgumentException("Mapped-ram migration is incompatible with compression");
      }
      if (next.get(MigrationCapability.POSTCOPY_RAM)) {
        throw new IllegalArgumentException("Mapped-ram migration is incompatible with postcopy");
      }
      if (next.get(MigrationCapability.MULTIFD)) {
        // QEMU 9.0 writes mapped-ram pages from its multifd channels too; Ferry does not (yet)
        throw new IllegalArgumentException("Mapped-ram migration with multifd is not implemented in Ferry");
      }
    }
    caps.putAll(changes);
  }

  public MigrationParameters parameters() {
    return params;
  }

  /** Applies parameter changes (QAPI names); they reach a running migration at once. */
  public synchronized MigrationParameters setParameters(Map<String, ?> changes) {
    MigrationParameters p = params.apply(changes);
    params = p;
    OutgoingMigration o = outgoing;
    if (o != null && o.state().status().isActive()) {
      o.updateParameters(p);
    }
    return p;
  }

  public MigrationState outgoingState() {
    return outgoingState;
  }

  public MigrationState incomingState() {
    return incomingState;
  }

  /** The current or last outgoing migration, or null. */
  public OutgoingMigration outgoing() {
    return outgoing;
  }

  /** The check every incoming load must pass before it completes (see {@link IncomingMigration#setLoadCheck}). */
  public void setLoadCheck(IncomingMigration.LoadCheck c) {
    loadCheck = c;
  }

  public IncomingMigration incoming() {
    return incoming;
  }

  /** The TLS credentials and authorization objects that {@code tls-creds}/{@code tls-authz} name. */
  public TlsObjects objects() {
    return objects;
  }

  /**
   * Told, in one line, about each incoming connection refused before its stream was read (a failed
   * TLS handshake, a TLS client at a plain destination); the destination goes on listening. Default:
   * a warning in the log.
   */
  public void onIncomingRefused(Consumer<String> listener) {
    refusedListener = listener;
  }

  /**
   * The source's TLS: the client credentials {@code tls-creds} names and the host name to check
   * ({@code tls-hostname}, else the URI's host; QEMU's "No hostname available for TLS" when neither
   * exists). Checked before the migration starts, so a missing object fails {@code migrate} itself.
   */
  private OutgoingMigration.Connector tlsConnector(MigrationParameters p, String uri) {
    MigrationUri u = MigrationUri.parse(uri);
    requireTlsTransport(u);
    TlsCredentials creds = objects.credentials(p.tlsCreds(), TlsCredentials.Endpoint.CLIENT);
    String hostname = !p.tlsHostname().isEmpty() ? p.tlsHostname() : u instanceof MigrationUri.Tcp t ? t.host() : "";
    if (hostname.isEmpty() && creds.verifyPeer()) {
      throw new IllegalArgumentException("No hostname available for TLS");
    }
    String checked = creds.verifyPeer() ? hostname : null;
    return () -> TlsChannel.client(Transports.connect(u), creds, checked);
  }

  /** mapped-ram needs a {@code file:} (QEMU 9.0 also lets an {@code fd:} through; Ferry does not). */
  private void requireSeekable(MigrationUri u) {
    if (caps.get(MigrationCapability.MAPPED_RAM) && !(u instanceof MigrationUri.File)) {
      throw new IllegalArgumentException("Migration requires seekable transport (e.g. file)");
    }
  }

  /**
   * The configuration section of a migration with the capabilities {@code on}: the validated ones
   * (QEMU 9.0 validates x-ignore-shared and mapped-ram) are listed, and a destination loads only a
   * stream that lists exactly its own.
   */
  private Configuration configuration(Set<MigrationCapability> on) {
    java.util.List<String> validated =
        on.contains(MigrationCapability.MAPPED_RAM) ? java.util.List.of(MigrationCapability.MAPPED_RAM.qapiName()) : java.util.List.of();
    return new Configuration(config.machineType(), config.targetPageBits(), validated, config.uuid());
  }

  private Set<MigrationCapability> capabilitiesOn() {
    return caps.entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).collect(Collectors.toSet());
  }

  private static void requireTlsTransport(MigrationUri u) {
    if (u instanceof MigrationUri.Exec || u instanceof MigrationUri.File) {
      throw new IllegalArgumentException(
          "tls-creds needs a two-way transport (tcp:, unix:, fd: of a socket), not " + u.text());
    }
  }

  /** The destination's TLS upgrade of an accepted channel (endpoint server, tls-authz). */
  private MigrationChannel tlsAccept(MigrationParameters p, MigrationChannel raw) throws IOException {
    TlsCredentials creds;
    Authz authz;
    try {
      creds = objects.credentials(p.tlsCreds(), TlsCredentials.Endpoint.SERVER);
      authz = p.tlsAuthz().isEmpty() ? null : objects.authz(p.tlsAuthz());
    } catch (IllegalArgumentException e) {
      raw.close();
      throw new IOException(e.getMessage(), e);
    }
    return TlsChannel.server(raw, creds, authz);
  }

  /**
   * Starts migrating to {@code uri} in the background.
   *
   * @throws IllegalArgumentException for a bad URI
   * @throws IllegalStateException when a migration is in progress
   */
  public synchronized OutgoingMigration migrate(String uri) {
    MigrationUri u = MigrationUri.parse(uri); // a bad URI fails here, before any state change
    requireSeekable(u);
    OutgoingMigration.Connector channels = null;
    if (caps.get(MigrationCapability.MULTIFD)) {
      requireMultifdTransport(u);
      channels = connectorFor(uri); // each channel connects as the main connection does (TLS included)
    }
    if (!params.tls() && u instanceof MigrationUri.File) {
      return migrate(() -> Transports.connect(uri), true, null);
    }
    return migrate(connectorFor(uri), false, channels);
  }

  /** QEMU 7.2 runs multifd over tcp, unix and vsock sockets only ({@code migrate_multi_channels_is_allowed}). */
  private static void requireMultifdTransport(MigrationUri u) {
    if (!(u instanceof MigrationUri.Tcp || u instanceof MigrationUri.Unix)) {
      throw new IllegalArgumentException(
          "multifd is not supported by current protocol: " + u.text() + " (multifd needs tcp: or unix:)");
    }
  }

  /** How the source connects to {@code uri} with the current parameters (TLS or plain). */
  private OutgoingMigration.Connector connectorFor(String uri) {
    MigrationUri.parse(uri); // a bad URI fails here, before any state change
    MigrationParameters p = params;
    if (p.tls()) {
      return tlsConnector(p, uri);
    }
    MigrationUri u = MigrationUri.parse(uri);
    if (u instanceof MigrationUri.Tcp || u instanceof MigrationUri.Unix) {
      // a destination that requires TLS answers with an alert: PlainSource names that reason
      return () -> PlainSource.wrap(Transports.connect(u));
    }
    return () -> Transports.connect(uri);
  }

  /**
   * {@code migrate {uri, resume: true}} (QEMU 7.2's rules and texts): the paused postcopy migration
   * connects to {@code uri} (the destination's migrate-recover listener) and recovers there; the
   * status becomes postcopy-recover once connected, postcopy-active after the handshake.
   *
   * @throws IllegalStateException with QEMU's message when no migration is postcopy-paused
   * @throws IllegalArgumentException for a bad URI
   */
  public OutgoingMigration resume(String uri) {
    OutgoingMigration o = outgoing;
    if (o == null || outgoingState.status() != MigrationStatus.POSTCOPY_PAUSED) {
      throw new IllegalStateException("Cannot resume if there is no paused migration");
    }
    if (capability(MigrationCapability.RELEASE_RAM)) {
      throw new IllegalStateException("Postcopy recovery cannot work when release-ram capability is set");
    }
    OutgoingMigration.Connector connector;
    synchronized (this) {
      connector = connectorFor(uri);
    }
    return resume(connector);
  }

  /** {@link #resume(String)} over the connection {@code connector} opens (a channel the caller built). */
  public OutgoingMigration resume(OutgoingMigration.Connector connector) {
    OutgoingMigration o = outgoing;
    if (o == null || outgoingState.status() != MigrationStatus.POSTCOPY_PAUSED) {
      throw new IllegalStateException("Cannot resume if there is no paused migration");
    }
    try {
      o.resume(connector);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while handing the resume to the migration thread");
    }
    return o;
  }

  /**
   * {@code migrate-pause} (QEMU 7.2): on the source in postcopy-active, else on the destination in
   * postcopy-active, the connection is shut and both sides go postcopy-paused.
   *
   * @throws IllegalStateException with QEMU's message in any other state
   */
  public void pausePostcopy() {
    OutgoingMigration o = outgoing;
    if (o != null && o.pausePostcopy()) {
      return;
    }
    IncomingMigration in = incoming;
    if (in != null && in.pausePostcopy()) {
      return;
    }
    throw new IllegalStateException("migrate-pause is currently only supported during postcopy-active state");
  }

  /**
   * {@code migrate-recover URI} (QEMU 7.2): only while the incoming migration is postcopy-paused;
   * announces {@code MIGRATION {setup}} while the status stays paused, listens on {@code uri} on a
   * thread of its own and hands the first connection (TLS-upgraded when tls-creds is set) to the
   * paused load, which continues on it. {@code onListening} gets the bound URI.
   *
   * @throws IllegalStateException with QEMU's message when not paused, or already triggered
   * @throws IllegalArgumentException for a bad URI
   * @throws IOException when the listener cannot be opened
   */
  public void recover(String uri, Consumer<String> onListening) throws IOException {
    IncomingMigration in = incoming;
    if (in == null || incomingState.status() != MigrationStatus.POSTCOPY_PAUSED) {
      throw new IllegalStateException("Migrate recover can only be run when postcopy is paused.");
    }
    MigrationUri.parse(uri);
    in.beginRecovery();
    TransportListener l;
    try {
      MigrationParameters p = params;
      if (p.tls()) {
        requireTlsTransport(MigrationUri.parse(uri));
        objects.credentials(p.tlsCreds(), TlsCredentials.Endpoint.SERVER);
      }
      l = Transports.listen(uri);
    } catch (IOException | RuntimeException e) {
      in.recoveryListenerFailed();
      throw e;
    }
    incomingState.announce(MigrationStatus.SETUP, "migrate-recover " + l.boundUri().text());
    if (onListening != null) {
      onListening.accept(l.boundUri().text());
    }
    Thread.ofPlatform().name("migrate-recover " + uri).daemon().start(() -> acceptRecovery(in, l));
  }

  private void acceptRecovery(IncomingMigration in, TransportListener l) {
    try (l) {
      while (true) {
        MigrationChannel raw = l.accept();
        MigrationChannel c;
        try {
          MigrationParameters p = params;
          c = p.tls() ? tlsAccept(p, raw) : PlainGate.admit(raw);
        } catch (TlsHandshakeException | PlainGate.RefusedException e) {
          refusedListener.accept("postcopy recovery on " + l.boundUri().text() + ": " + e.getMessage());
          continue;
        }
        if (!in.offerRecovery(c)) {
          LOG.warn("postcopy recovery connection {} arrived while the migration is {}: closed",
              c.peerDescription(), incomingState.status().qapiName());
          c.close();
        }
        return;
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn("postcopy recovery listener on {} failed: {}", l.boundUri().text(), e.getMessage());
      in.recoveryListenerFailed();
    }
  }

  /**
   * Starts migrating over the connection {@code connector} opens (on the migration thread): a
   * channel the caller built, e.g. an inherited or wrapped one.
   *
   * @throws IllegalStateException when a migration is in progress
   */
  public synchronized OutgoingMigration migrate(OutgoingMigration.Connector connector) {
    return migrate(connector, false, null);
  }

  private OutgoingMigration migrate(
      OutgoingMigration.Connector connector, boolean fileTarget, OutgoingMigration.Connector multifdChannels) {
    if (incomingState.status().isActive()) {
      throw new IllegalStateException("Guest is waiting for an incoming migration");
    }
    Set<MigrationCapability> on = capabilitiesOn();
    OutgoingMigration o = new OutgoingMigration(registry, vm, configuration(on), outgoingState, on, params);
    // mapped-ram bounds the file by its layout: no default byte budget then
    o.fileTarget(fileTarget && !on.contains(MigrationCapability.MAPPED_RAM));
    o.multifdConnector(multifdChannels);
    for (Consumer<OutgoingMigration> h : beforeStart) {
      h.accept(o);
    }
    // published before the thread starts, so a cancel from any thread (even from the connector
    // itself) reaches this migration and not the previous one
    OutgoingMigration previous = outgoing;
    outgoing = o;
    try {
      o.start(connector);
    } catch (RuntimeException e) {
      outgoing = previous;
      throw e;
    }
    return o;
  }

  /**
   * The destination's multifd channels, accepted after the main connection {@code main} on {@code
   * l} (QEMU 7.2 reads the main stream only once all have arrived); a failure fails the incoming
   * migration in one line.
   */
  private MultifdReceiver acceptMultifd(TransportListener l, MigrationChannel main, MigrationParameters p)
      throws IOException {
    MultifdReceiver.Admit admit = p.tls() ? raw -> tlsAccept(params.tls() ? params : p, raw) : PlainGate::admit;
    byte[] uuid = dev.ferry.stream.MultifdInit.uuidOrZeros(config.uuid());
    try {
      return MultifdReceiver.accept(l, admit, p.multifdChannels(), p.multifdCompression(), uuid, main::shutdown);
    } catch (IOException e) {
      main.shutdown();
      OutgoingMigration.closeQuietly(main);
      incomingState.transitionFromCurrent(MigrationStatus.SETUP, "incoming " + main.peerDescription());
      incomingState.transitionFromCurrent(MigrationStatus.FAILED, e.getMessage());
      throw e;
    }
  }

  public void cancel() {
    OutgoingMigration o = outgoing;
    if (o != null) {
      o.cancel();
    }
  }

  /** Loads one incoming migration from the already open channel {@code c}; blocks until done. */
  public StateLoader incoming(MigrationChannel c, StreamReader.Options options) throws IOException {
    return incoming(c, options, SaveOptions.NONE);
  }

  /**
   * {@link #incoming(MigrationChannel, StreamReader.Options)} with {@code loadOptions} for the live
   * handlers' state of this load.
   */
  public StateLoader incoming(MigrationChannel c, StreamReader.Options options, SaveOptions loadOptions)
      throws IOException {
    IncomingMigration in;
    synchronized (this) {
      if (incomingState.status().isActive()) {
        throw new IllegalStateException("An incoming migration is already in progress");
      }
      in = new IncomingMigration(registry, configuration(capabilitiesOn()), incomingState, options, loadOptions);
      in.setLoadCheck(loadCheck);
      for (Consumer<IncomingMigration> h : beforeIncoming) {
        h.accept(in);
      }
      incoming = in;
    }
    MigrationParameters p = params;
    if (capability(MigrationCapability.MULTIFD)) {
      String why = "multifd is not supported by current protocol: " + c.peerDescription()
          + " (multifd needs an incoming tcp: or unix: URI)";
      incomingState.transitionFromCurrent(MigrationStatus.FAILED, why);
      throw new IOException(why);
    }
    if (p.tls()) {
      c = tlsAccept(p, c);
    }
    return in.load(c);
  }

  /**
   * Listens on {@code uri}, accepts one connection and loads the stream; blocks until done.
   * {@code onListening} gets the bound URI (a tcp port 0 resolved) once listening.
   */
  public StateLoader incoming(String uri, StreamReader.Options options, Consumer<String> onListening)
      throws IOException {
    return incoming(uri, options, SaveOptions.NONE, onListening);
  }

  /**
   * {@link #incoming(String, StreamReader.Options, Consumer)} with {@code loadOptions} for the live
   * handlers' state of this load.
   */
  public StateLoader incoming(
      String uri, StreamReader.Options options, SaveOptions loadOptions, Consumer<String> onListening)
      throws IOException {
    IncomingMigration in;
    synchronized (this) {
      if (incomingState.status().isActive()) {
        throw new IllegalStateException("An incoming migration is already in progress");
      }
      in = new IncomingMigration(registry, configuration(capabilitiesOn()), incomingState, options, loadOptions);
      in.setLoadCheck(loadCheck);
      for (Consumer<IncomingMigration> h : beforeIncoming) {
        h.accept(in);
      }
      incoming = in;
    }
    MigrationParameters p = params;
    synchronized (this) {
      requireSeekable(MigrationUri.parse(uri));
    }
    boolean multifd = capability(MigrationCapability.MULTIFD);
    if (multifd) {
      requireMultifdTransport(MigrationUri.parse(uri));
    }
    if (p.tls()) {
      requireTlsTransport(MigrationUri.parse(uri));
      objects.credentials(p.tlsCreds(), TlsCredentials.Endpoint.SERVER); // fail now, not per connection
    }
    try (TransportListener l = Transports.listen(MigrationUri.parse(uri), multifd ? p.multifdChannels() + 1 : 1)) {
      if (onListening != null) {
        onListening.accept(l.boundUri().text());
      }
      // tcp and unix listen on: a peer refused before its stream was read leaves room for the next
      boolean listening = l.boundUri() instanceof MigrationUri.Tcp || l.boundUri() instanceof MigrationUri.Unix;
      while (true) {
        MigrationChannel raw = l.accept();
        MigrationChannel c;
        try {
          if (p.tls()) {
            // the objects are looked up per connection: edits of tls-authz apply to the next one
            MigrationParameters now = params;
            c = tlsAccept(now.tls() ? now : p, raw);
          } else if (multifd) {
            c = raw; // the gate looks at it once the channels are in: the source writes the main stream only then
          } else {
            c = listening ? PlainGate.admit(raw) : raw;
          }
        } catch (TlsHandshakeException | PlainGate.RefusedException e) {
          if (!listening) {
            throw e;
          }
          refusedListener.accept("incoming migration on " + l.boundUri().text() + ": " + e.getMessage());
          continue;
        }
        if (!multifd) {
          try (MigrationChannel open = c) {
            return in.load(open);
          }
        }
        try (MultifdReceiver channels = acceptMultifd(l, c, p)) {
          MigrationChannel main = p.tls() ? c : PlainGate.admit(c);
          try (MigrationChannel open = main) {
            in.multifd(channels);
            channels.start();
            return in.load(open);
          }
        }
      }
    }
  }
}
