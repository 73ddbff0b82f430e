//! `block.*`: the plain device (write and read back, flush, refused requests), then the
//! same pattern through shared-core's encrypted layer on an MBR partition of the disk.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use conformance_protocol::{block, case, BLOCK_CASES};
use unikernel::block::encrypted::{Encrypted, EncryptedError, Key};
use unikernel::block::mbr::{write_table, Partition};
use unikernel::block::{BlockDevice, BlockError, BlockExt};
use unikernel::executor::block_on;
use unikernel::services;

use super::{check, Outcome, Report};

/// The block cases, on the backend's first block device.
pub(crate) fn run(report: &mut Report) {
    let mut disk = match services::open_block("") {
        Ok(d) => d,
        Err(e) => {
            for case in BLOCK_CASES {
                report.record(case, Outcome::Fail(format!("cannot open the block device: {e}")));
            }
            return;
        }
    };
    let info = disk.info();
    let ss = info.sector_size as usize;
    block_on(async {
        let (first, sectors) = (block::FIRST_SECTOR, block::SECTORS);
        let mut write_buf = vec![0u8; ss * sectors as usize];
        block::fill(&mut write_buf, first, ss);
        let mut read_buf = vec![0u8; write_buf.len()];
        let outcome = match disk.write(first, &write_buf).await {
            Err(e) => Outcome::Fail(format!("write of sectors {first}..={} failed: {e}", first + sectors - 1)),
            Ok(()) => match disk.read(first, &mut read_buf).await {
                Err(e) => Outcome::Fail(format!("read back failed: {e}")),
                Ok(()) => check(
                    read_buf == write_buf,
                    format!("{sectors} sectors of {ss} B written and read back ({} sectors on device)", info.sectors),
                    String::from("read back differs from what was written"),
                ),
            },
        };
        report.record(case::BLOCK_WRITE_READ, outcome);
        report.record(
            case::BLOCK_FLUSH,
            match disk.flush().await {
                Ok(()) => Outcome::Pass(String::from("flush completed")),
                Err(e) => Outcome::Fail(format!("flush failed: {e}")),
            },
        );
        let past_end = disk.write(info.sectors, &write_buf[..ss]).await;
        let straddling = disk.read(info.sectors - 1, &mut read_buf[..2 * ss]).await;
        let misaligned = disk.read(0, &mut read_buf[..ss - 1]).await;
        report.record(
            case::BLOCK_OUT_OF_RANGE,
            check(
                matches!(past_end, Err(BlockError::OutOfRange { .. }))
                    && matches!(straddling, Err(BlockError::OutOfRange { .. }))
                    && matches!(misaligned, Err(BlockError::Misaligned { .. })),
                String::from("past-the-end, straddling and misaligned requests are refused"),
                format!("got {past_end:?}, {straddling:?}, {misaligned:?}"),
            ),
        );
    });
    report.record(case::BLOCK_ENCRYPTED, block_on(encrypted(disk)));
}

/// `block.encrypted`: an MBR partition (written here, in sector 0), formatted with a random
/// key; the pattern written and read back, also after reopening; a wrong key refused; a
/// ciphertext bit flipped below the layer makes the read fail, and reads again once restored.
async fn encrypted(mut disk: alloc::boxed::Box<dyn BlockDevice>) -> Outcome {
    use block::{ENCRYPTED_FIRST_SECTOR as START, ENCRYPTED_KIND, ENCRYPTED_SECTORS, FIRST_SECTOR, SECTORS};
    let info = disk.info();
    let ss = info.sector_size as usize;
    if info.sectors < START + ENCRYPTED_SECTORS {
        return Outcome::Fail(format!(
            "the disk has {} sectors, the case needs {}",
            info.sectors,
            START + ENCRYPTED_SECTORS
        ));
    }
    let mut mbr = vec![0u8; ss];
    write_table(&mut mbr, &[(ENCRYPTED_KIND, START as u32, ENCRYPTED_SECTORS as u32)]);
    if let Err(e) = disk.write(0, &mbr).await {
        return Outcome::Fail(format!("writing the MBR failed: {e}"));
    }
    let part = match Partition::open(disk, 0).await {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("opening the partition failed: {e:?}")),
    };
    let mut key = [0u8; 32];
    services::fill_random(&mut key);
    let key = Key::new(key);
    let mut dev = match Encrypted::format(part, &key).await {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("format failed: {e}")),
    };
    let mut plain = vec![0u8; ss * SECTORS as usize];
    block::fill(&mut plain, FIRST_SECTOR, ss);
    let mut back = vec![0u8; plain.len()];
    let written = async {
        dev.write(FIRST_SECTOR, &plain).await?;
        dev.flush().await?;
        dev.read(FIRST_SECTOR, &mut back).await
    };
    if let Err(e) = written.await {
        return Outcome::Fail(format!("write, flush and read back through the layer: {e}"));
    }
    if back != plain {
        return Outcome::Fail(String::from("read back through the layer differs from what was written"));
    }
    // A reboot's view: the partition opened again, with a wrong key and the right one.
    let mut part = dev.into_inner();
    match Encrypted::open(&mut part, &Key::new([0x5a; 32])).await {
        Err(EncryptedError::WrongKey) => {}
        Err(e) => return Outcome::Fail(format!("a wrong key gave `{e}`, not WrongKey")),
        Ok(_) => return Outcome::Fail(String::from("a wrong key opened the device")),
    }
    let mut dev = match Encrypted::open(&mut part, &key).await {
        Ok(d) => d,
        Err(e) => return Outcome::Fail(format!("reopening failed: {e}")),
    };
    back.fill(0);
    if let Err(e) = dev.read(FIRST_SECTOR, &mut back).await {
        return Outcome::Fail(format!("read after reopening failed: {e}"));
    }
    if back != plain {
        return Outcome::Fail(String::from("read after reopening differs from what was written"));
    }
    // Tampering below the layer: one ciphertext bit of the third sector.
    let victim = FIRST_SECTOR + 2;
    let physical = dev.physical_sector(victim);
    let mut raw = vec![0u8; ss];
    let flip = async |dev: &mut Encrypted<_>, raw: &mut [u8]| -> Result<(), BlockError> {
        let below: &mut &mut Partition<_> = dev.inner_mut();
        below.read(physical, raw).await?;
        raw[17] ^= 0x04;
        below.write(physical, raw).await
    };
    if let Err(e) = flip(&mut dev, &mut raw).await {
        return Outcome::Fail(format!("flipping a bit below the layer failed: {e}"));
    }
    let tampered = dev.read(FIRST_SECTOR, &mut back).await;
    if tampered != Err(BlockError::Integrity { lba: victim }) {
        return Outcome::Fail(format!(
            "a flipped ciphertext bit in sector {victim} gave {tampered:?}, not an integrity error"
        ));
    }
    if back.iter().any(|&b| b != 0) {
        return Outcome::Fail(String::from("the failed read left bytes in the buffer"));
    }
    let restored = async {
        flip(&mut dev, &mut raw).await?;
        dev.read(FIRST_SECTOR, &mut back).await
    };
    check(
        restored.await.is_ok() && back == plain,
        format!(
            "{SECTORS} sectors through AES-GCM on partition {START}..+{ENCRYPTED_SECTORS} written, read back, reopened (wrong key refused); a flipped ciphertext bit in sector {victim}: {}",
            BlockError::Integrity { lba: victim }
        ),
        String::from("after restoring the flipped bit the sectors did not read back"),
    )
}
