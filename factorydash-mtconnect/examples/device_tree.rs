//! Print the device tree of an MTConnectDevices document (a `/probe` answer).
//!
//! Run with: `cargo run -p factorydash-mtconnect --example device_tree -- FILE`
//! (FILE may be gzipped, e.g. `recordings/nist-gfagie01-2016-05-02/probe.xml.gz`).

use factorydash_mtconnect::{parse_devices, recording::read_maybe_gzipped, Component};

fn print(component: &Component, depth: usize) {
    let indent = "  ".repeat(depth);
    let name = component.name.as_deref().unwrap_or("");
    println!("{indent}{} {name} (id {})", component.element, component.id);
    for item in &component.data_items {
        let category = item.category.map_or("?", |c| c.as_str());
        let units = item
            .units
            .as_deref()
            .map(|u| format!(" [{u}]"))
            .unwrap_or_default();
        println!("{indent}  · {} {category} {}{units}", item.id, item.kind);
    }
    for child in &component.components {
        print(child, depth + 1);
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: device_tree FILE"))?;
    let bytes = read_maybe_gzipped(path.as_ref())?;
    let parsed = parse_devices(&bytes)?;
    for problem in &parsed.problems {
        eprintln!("problem: {problem}");
    }
    for device in &parsed.value.devices {
        print(device, 0);
    }
    Ok(())
}
