//! Block I/O: `--blkio-weight`, `--blkio-weight-device` and the
//! `--device-{read,write}-{bps,iops}` throttles, with device paths turned
//! into major:minor numbers.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::devices::block_device_numbers;
use super::SpecError;
use crate::containers::model::{HostConfig, ThrottleDevice};

pub(crate) fn block_io(host: &HostConfig) -> Result<Option<LinuxBlockIo>, SpecError> {
    let weight_range = |w: u16| (10..=1000).contains(&w);
    if host.blkio_weight > 0 && !weight_range(host.blkio_weight) {
        return Err(SpecError::invalid(format!(
            "Range of blkio weight is from 10 to 1000: --blkio-weight is {}",
            host.blkio_weight
        )));
    }
    if host.io_maximum_bandwidth != 0 {
        return Err(SpecError::invalid(
            "invalid option: QoS maximum bandwidth configuration is not supported on linux",
        ));
    }
    if host.io_maximum_iops != 0 {
        return Err(SpecError::invalid(
            "invalid option: QoS maximum IOPs configuration is not supported on linux",
        ));
    }
    let mut weights = Vec::new();
    for d in &host.blkio_weight_device {
        if d.weight > 0 && !weight_range(d.weight) {
            return Err(SpecError::invalid(format!(
                "invalid weight for device: {}:{}: --blkio-weight-device takes 10 to 1000",
                d.path, d.weight
            )));
        }
        let (major, minor) = block_device_numbers(&d.path, "--blkio-weight-device")?;
        weights.push(
            LinuxWeightDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .weight(d.weight)
                .build()
                .map_err(|e| SpecError::Internal(format!("blkio weight device: {e}")))?,
        );
    }
    let throttle = |list: &[ThrottleDevice],
                    flag: &str|
     -> Result<Option<Vec<LinuxThrottleDevice>>, SpecError> {
        let mut out = Vec::new();
        for d in list {
            let (major, minor) = block_device_numbers(&d.path, flag)?;
            out.push(
                LinuxThrottleDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .rate(d.rate)
                    .build()
                    .map_err(|e| SpecError::Internal(format!("{flag}: {e}")))?,
            );
        }
        Ok((!out.is_empty()).then_some(out))
    };
    let mut b = LinuxBlockIo::default();
    b.set_weight((host.blkio_weight > 0).then_some(host.blkio_weight))
        .set_weight_device((!weights.is_empty()).then_some(weights))
        .set_throttle_read_bps_device(throttle(&host.blkio_device_read_bps, "--device-read-bps")?)
        .set_throttle_write_bps_device(throttle(
            &host.blkio_device_write_bps,
            "--device-write-bps",
        )?)
        .set_throttle_read_iops_device(throttle(
            &host.blkio_device_read_iops,
            "--device-read-iops",
        )?)
        .set_throttle_write_iops_device(throttle(
            &host.blkio_device_write_iops,
            "--device-write-iops",
        )?);
    Ok((b != LinuxBlockIo::default()).then_some(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn build(host: &HostConfig) -> Result<Value, SpecError> {
        Ok(serde_json::to_value(block_io(host)?).unwrap())
    }

    fn err(host: HostConfig) -> String {
        build(&host).unwrap_err().to_string()
    }

    #[test]
    fn block_io_devices() {
        use crate::containers::model::WeightDevice;
        let Some(dev) = ["/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1"]
            .into_iter()
            .find(|p| block_device_numbers(p, "x").is_ok())
        else {
            eprintln!("SKIPPED: no block device on this host");
            return;
        };
        let (major, minor) = block_device_numbers(dev, "x").unwrap();
        let v = build(&HostConfig {
            blkio_weight: 300,
            blkio_weight_device: vec![WeightDevice {
                path: dev.into(),
                weight: 200,
            }],
            blkio_device_read_bps: vec![ThrottleDevice {
                path: dev.into(),
                rate: 1 << 20,
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({
                "weight": 300,
                "weightDevice": [{"major": major, "minor": minor, "weight": 200}],
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}],
            })
        );
    }

    #[test]
    fn block_io_errors() {
        assert!(err(HostConfig {
            blkio_weight: 5,
            ..Default::default()
        })
        .starts_with("Range of blkio weight is from 10 to 1000"));
        let e = err(HostConfig {
            blkio_device_write_iops: vec![ThrottleDevice {
                path: "/dev/berth-no-such-disk".into(),
                rate: 5,
            }],
            ..Default::default()
        });
        assert!(
            e.contains("--device-write-iops") && e.contains("/dev/berth-no-such-disk"),
            "{e}"
        );
        let e = err(HostConfig {
            blkio_device_read_bps: vec![ThrottleDevice {
                path: "/dev/null".into(),
                rate: 5,
            }],
            ..Default::default()
        });
        assert!(e.contains("not a block device"), "{e}");
        assert!(err(HostConfig {
            io_maximum_bandwidth: 5,
            ..Default::default()
        })
        .contains("not supported on linux"));
    }
}
