//! What the store says of devices: every latest value of one, and its status.

use factorydash_core::{DeviceInfo, DeviceStatus, Observation, PageRequest};
use factorydash_store::{LatestFilter, Store, StoreError};

/// The latest observation of every data item of `device`.
pub async fn device_latest(
    store: &dyn Store,
    device: &str,
) -> Result<Vec<Observation>, StoreError> {
    let filter = LatestFilter::device(device);
    let mut request = PageRequest::first(factorydash_core::page::MAX_PAGE_LIMIT);
    let mut out = Vec::new();
    loop {
        let page = store.latest(&filter, &request).await?;
        out.extend(page.items);
        match page.next {
            Some(next) => request.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A device's status from its latest values.
pub async fn device_status(store: &dyn Store, device: &str) -> Result<DeviceStatus, StoreError> {
    Ok(DeviceStatus::from_latest(
        device,
        &device_latest(store, device).await?,
    ))
}

/// The statuses of `devices`, in their order.
pub async fn statuses(
    store: &dyn Store,
    devices: &[DeviceInfo],
) -> Result<Vec<DeviceStatus>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        out.push(device_status(store, &d.name).await?);
    }
    Ok(out)
}
