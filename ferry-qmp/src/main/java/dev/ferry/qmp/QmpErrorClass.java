package dev.ferry.qmp;

/** QMP error classes (QAPI {@code QapiErrorClass}); the wire name is the constant's QAPI name. */
public enum QmpErrorClass {
  GENERIC_ERROR("GenericError"),
  COMMAND_NOT_FOUND("CommandNotFound"),
  DEVICE_NOT_ACTIVE("DeviceNotActive"),
  DEVICE_NOT_FOUND("DeviceNotFound"),
  KVM_MISSING_CAP("KVMMissingCap");

  private final String wireName;

  QmpErrorClass(String wireName) {
    this.wireName = wireName;
  }

  /** e.g. {@code GenericError}. */
  public String wireName() {
    return wireName;
  }

  /** The class of that name; an unknown name (a newer server) maps to GENERIC_ERROR. */
  public static QmpErrorClass fromWireName(String name) {
    for (QmpErrorClass c : values()) {
      if (c.wireName.equals(name)) {
        return c;
      }
    }
    return GENERIC_ERROR;
  }
}
