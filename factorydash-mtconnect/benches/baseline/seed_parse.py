#!/usr/bin/env python3
# Copied unchanged (but for this comment) from the factorydash team's shared/bench/seed_parse.py:
# the old Django app's parse path, run beside our parser by benches/parse.rs.
"""Peer baseline: the original FactoryDash parse path, for side-by-side parse benchmarks.

It re-implements, in plain standard-library Python, the two parse functions of the original
Django app (monitoring/management/commands/load_nist_data.py):
  * `orig`  : ElementTree.fromstring + findall over Events/*, Samples/*, Condition/*,
              building one dict per observation (timestamp parsed, text stripped);
  * `filter`: iterparse over the whole document keeping only 12 element names.

Usage: seed_parse.py [--mode orig|filter] [--repeat N] FILE...
Prints one line per file: file, bytes, observations, best seconds, MB/s, observations/s.
"""
import argparse
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from io import StringIO


def parse_orig(xml_data):
    root = ET.fromstring(xml_data)
    ns = {"ns": root.tag.split("}")[0].strip("{")} if "}" in root.tag else {}
    prefix = "ns:" if ns else ""
    out = []
    for data_type, xpath in (("Events", f".//{prefix}Events/*"),
                             ("Samples", f".//{prefix}Samples/*"),
                             ("Condition", f".//{prefix}Condition/*")):
        for el in root.findall(xpath, ns):
            ts = el.attrib.get("timestamp", "").strip()
            try:
                t = datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
                if t is not None and t.tzinfo is None:
                    t = t.replace(tzinfo=timezone.utc)
            except ValueError:
                t = None
            out.append({
                "data_type": data_type,
                "data_item_id": el.attrib.get("dataItemId", "").strip(),
                "timestamp": t,
                "name": el.tag.split("}")[1].strip() if "}" in el.tag else el.tag.strip(),
                "value": el.text.strip() if el.text else None,
            })
    return out


ALLOWED = {"Availability", "EmergencyStop", "Xfrt", "Yfrt", "Zfrt", "Xposition", "Yposition",
           "Zposition", "Temperature", "AccumulatedTime", "PathFeedRate", "RotaryVelocity"}


def parse_filter(xml_data):
    out = []
    for _, el in ET.iterparse(StringIO(xml_data), events=("end",)):
        tag = el.tag.split("}")[-1]
        if tag in ALLOWED:
            out.append((tag, el.attrib.get("dataItemId", ""), el.attrib.get("timestamp", ""),
                        el.text.strip() if el.text else None))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("orig", "filter"), default="orig")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    fn = parse_orig if a.mode == "orig" else parse_filter
    for path in a.files:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8-sig")
        best, n = float("inf"), 0
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            n = len(fn(text))
            best = min(best, time.perf_counter() - t0)
        print(f"{path}\t{len(raw)}\t{n}\t{best:.6f}\t{len(raw) / best / 1e6:.1f} MB/s\t{n / best:,.0f} obs/s")


if __name__ == "__main__":
    main()
