#!/usr/bin/env python3
"""Writes sample001.xml of the chart recording (see README.md): python3 generate.py"""
from datetime import datetime, timedelta, timezone

t0 = datetime(2026, 12, 1, 8, 0, 0, tzinfo=timezone.utc)
obs = []  # (seconds, section, element, id, value)
obs += [(0, "Events", "Availability", "avail", "AVAILABLE"),
        (0, "Events", "Execution", "exec", "ACTIVE"),
        (0, "Events", "ControllerMode", "mode", "AUTOMATIC"),
        (0, "Events", "Program", "prog", "O1234"),
        (0, "Condition", "Normal", "sys", ""),
        (30, "Condition", "Warning", "sys", "Spindle warm"),
        (35, "Condition", "Normal", "sys", ""),
        (40, "Events", "Execution", "exec", "READY")]
for i in range(61):
    # X near 17.85184 mm, moving by tenths of a micrometre.
    obs.append((i, "Samples", "Position", "Xpos", f"{17.85184 + ((i * 7) % 5 - 2) * 0.00004:.5f}"))
    # Spindle speed about 10,000 rpm.
    obs.append((i, "Samples", "RotaryVelocity", "Sspeed", str(10000 + ((i * 3) % 5 - 2) * 100)))
# Spindle load reported only when it changes: 0 %, 80 % at 20 s, 0 % at 40 s, 80 % at 50 s.
for s, v in [(0, "0"), (20, "80"), (40, "0"), (50, "80")]:
    obs.append((s, "Samples", "Load", "Sload", v))
obs.sort(key=lambda o: o[0])

components = {"avail": ("Device", "d1", "Lathe1"), "exec": ("Controller", "c1", "controller"),
              "mode": ("Controller", "c1", "controller"), "prog": ("Controller", "c1", "controller"),
              "sys": ("Controller", "c1", "controller"), "Xpos": ("Linear", "x1", "X"),
              "Sspeed": ("Rotary", "s1", "C"), "Sload": ("Rotary", "s1", "C")}
streams = {}
for seq, (s, section, element, item, value) in enumerate(obs, start=1):
    ts = (t0 + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    comp = components[item]
    if section == "Condition":
        kind = ' type="SYSTEM"'
        text = value
    else:
        kind = ""
        text = value
    xml = f'<{element} dataItemId="{item}" timestamp="{ts}" sequence="{seq}"{kind}>{text}</{element}>' if text else \
          f'<{element} dataItemId="{item}" timestamp="{ts}" sequence="{seq}"{kind}/>'
    streams.setdefault(comp, {}).setdefault(section, []).append(xml)
last = len(obs)
out = ['<?xml version="1.0" encoding="UTF-8"?>',
       '<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3">',
       f'  <Header creationTime="2026-12-01T08:01:00.000000Z" sender="chart" instanceId="1" version="1.3.0" bufferSize="1000" nextSequence="{last + 1}" firstSequence="1" lastSequence="{last}"/>',
       '  <Streams>', '    <DeviceStream name="Lathe1" uuid="lathe-1">']
for (component, cid, name), sections in streams.items():
    out.append(f'      <ComponentStream component="{component}" name="{name}" componentId="{cid}">')
    for section, items in sections.items():
        out.append(f'        <{section}>' + "".join(items) + f'</{section}>')
    out.append('      </ComponentStream>')
out += ['    </DeviceStream>', '  </Streams>', '</MTConnectStreams>']
open("sample001.xml", "w").write("\n".join(out) + "\n")
