package dev.ferry.savevm;

import dev.ferry.stream.SectionType;

/**
 * A section header as read from (or written to) the stream. For PART and END, {@code idstr},
 * {@code instanceId} and {@code version} are those of the START that opened the section.
 *
 * @param offset stream offset of the type byte
 */
public record SectionHeader(
    SectionType type, long sectionId, String idstr, long instanceId, long version, long offset) {

  /** "section 'ram' instance 0 (id 2)". */
  public String describe() {
    return "section '" + idstr + "' instance " + instanceId + " (id " + sectionId + ")";
  }
}
