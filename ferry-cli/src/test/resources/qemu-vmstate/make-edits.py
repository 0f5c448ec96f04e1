#!/usr/bin/env python3
"""Makes the edited copies of QEMU 7.2's -dump-vmstate output used by VmstateQemuCheckerTest.

Run once, by hand, from this directory (see README.md); the tests only read its results:
    python3 make-edits.py pc-i440fx-7.2.json.gz
Each edit changes the destination side of one kind of rule of the checker.
"""
import copy
import gzip
import json
import sys


def fields(dump, section):
    return dump[section]["Description"]["Fields"]


def field(dump, section, name):
    return next(f for f in fields(dump, section) if f["field"] == name)


def machine_71(d):
    d["vmschkmachine"]["Name"] = "pc-i440fx-7.1"


def struct_sizes(d):
    # sizes of struct fields (those with a nested Description) change; their descriptions do not
    field(d, "pcie-pci-bridge", "parent_obj")["size"] = 2616
    field(d, "e1000", "parent_obj")["size"] = 2600
    field(d, "hpet", "timer")["size"] = 72


def scalar_sizes(d):
    field(d, "mc146818rtc", "cmos_index")["size"] = 2
    field(d, "PIIX3", "dev")["Description"]["Fields"][0]["size"] = 8  # PCIDevice/version_id, nested


def versions(d):
    for o in (d["mc146818rtc"], d["mc146818rtc"]["Description"]):
        o["version_id"] = 2
    for o in (d["hpet"], d["hpet"]["Description"]):
        o["minimum_version_id"] = 3


def field_version(d):
    field(d, "mc146818rtc", "irq_coalesced")["version_id"] = 1


def subsections_removed(d):
    desc = d["fw_cfg"]["Description"]
    desc["Subsections"] = [s for s in desc["Subsections"] if s["name"] != "fw_cfg/dma"]
    del d["PIIX3"]["Description"]["Subsections"]


def field_renamed(d):
    field(d, "e1000", "rxbuf_size")["field"] = "rx_buf_size"


def field_removed(d):
    fields(d, "hpet").pop()


def section_removed(d):
    del d["isa-pit"]


def unused_same_bytes(d):
    # a field becomes unused bytes of its size; two fields become one run of their summed size
    field(d, "mc146818rtc", "cmos_index")["field"] = "unused"
    fs = fields(d, "e1000")
    i = next(i for i, f in enumerate(fs) if f["field"] == "rxbuf_size")
    merged = copy.deepcopy(fs[i])
    merged["field"] = "unused"
    merged["size"] = fs[i]["size"] + fs[i + 1]["size"]
    fs[i:i + 2] = [merged]


def unused_split(d):
    fs = fields(d, "mc146818rtc")
    i = next(i for i, f in enumerate(fs) if f["field"] == "unused")
    a, b = copy.deepcopy(fs[i]), copy.deepcopy(fs[i])
    a["size"], b["size"] = 20, fs[i]["size"] - 20
    fs[i:i + 1] = [a, b]


def into_struct(d):
    # the eecd_state.* fields move into a struct: the wire format stays the same
    fs = fields(d, "e1000")
    idx = [i for i, f in enumerate(fs) if f["field"].startswith("eecd_state.")]
    inner = [fs[i] for i in idx]
    struct = {"field": "eecd_state", "version_id": 0, "field_exists": False,
              "size": sum(f["size"] for f in inner),
              "Description": {"name": "e1000_eecd", "version_id": 1, "minimum_version_id": 1,
                              "Fields": inner}}
    fs[idx[0]:idx[-1] + 1] = [struct]


def struct_flattened(d):
    del field(d, "PIIX3", "dev")["Description"]


EDITS = [machine_71, struct_sizes, scalar_sizes, versions, field_version, subsections_removed,
         field_renamed, field_removed, section_removed, unused_same_bytes, unused_split,
         into_struct, struct_flattened]


def main():
    with gzip.open(sys.argv[1], "rt") as f:
        base = json.load(f)
    for edit in EDITS:
        d = copy.deepcopy(base)
        edit(d)
        name = "edit-" + edit.__name__.replace("_", "-") + ".json.gz"
        with gzip.GzipFile(name, "wb", mtime=0) as f:
            f.write((json.dumps(d, indent=2) + "\n").encode())
        print(name)


if __name__ == "__main__":
    main()
