//! Log drivers fed by a real container: rotation, the local format and
//! `--follow` until the container stops.

mod common;

use std::sync::{Arc, Mutex};

use berth_monitor::config::LogDriver;
use berth_monitor::logs::{self, LogReadOptions, LogStream};
use berth_testutil::require_root;
use common::{Ct, Rt};

const LINES: usize = 400;

fn rotation(driver: LogDriver) {
    let script = format!("i=0; while [ $i -lt {LINES} ]; do echo line-$i; i=$((i+1)); done");
    let mut ct = Ct::new("rot", Rt::Berth, &["sh", "-c", &script]);
    ct.config.log.driver = driver;
    ct.config.log.max_size = Some(2048);
    ct.config.log.max_file = 3;
    ct.start().expect("start");
    assert_eq!(ct.wait(), 0);
    let path = &ct.config.log.path;
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", path.display()));
    for p in [path.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&p).expect("log file").len();
        assert!(len <= 2048, "{} has {len} bytes", p.display());
    }
    assert!(!rotated(3).exists());
    // What is kept is the newest output, in order, ending with the last line.
    let lines: Vec<String> = ct.logs().into_iter().map(|(_, l)| l).collect();
    assert!(
        lines.len() < LINES && lines.len() > 20,
        "{} lines",
        lines.len()
    );
    assert_eq!(lines.last().map(String::as_str), Some("line-399\n"));
    let first: usize = lines[0]
        .trim()
        .trim_start_matches("line-")
        .parse()
        .expect("number");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("line-{}\n", first + i));
    }
    // --tail over rotated files.
    let mut tail = Vec::new();
    logs::read(
        &ct.config.log,
        &LogReadOptions {
            stdout: true,
            stderr: true,
            tail: Some(3),
            ..Default::default()
        },
        &mut |_: LogStream, d: &[u8]| {
            tail.push(String::from_utf8_lossy(d).into_owned());
            Ok(())
        },
    )
    .expect("tail");
    assert_eq!(tail, ["line-397\n", "line-398\n", "line-399\n"]);
}

#[test]
fn json_file_rotates_by_size_and_count() {
    require_root!();
    rotation(LogDriver::JsonFile);
}

#[test]
fn local_driver_rotates_and_reads_back() {
    require_root!();
    rotation(LogDriver::Local);
}

#[test]
fn none_driver_keeps_nothing() {
    require_root!();
    let mut ct = Ct::new("none", Rt::Berth, &["echo", "hi"]);
    ct.config.log.driver = LogDriver::None;
    ct.start().expect("start");
    assert_eq!(ct.wait(), 0);
    assert!(!ct.config.log.path.exists());
    let err = logs::read(
        &ct.config.log,
        &LogReadOptions::default(),
        &mut |_: LogStream, _: &[u8]| Ok(()),
    );
    assert!(matches!(err, Err(berth_monitor::LogError::NoLogs)));
}

#[test]
fn follow_crosses_rotation_and_ends_with_the_container() {
    require_root!();
    // Output over ~1.5 s, rotating several times while the reader follows.
    let script = "i=0; while [ $i -lt 60 ]; do echo follow-$i; i=$((i+1)); sleep 0.02; done";
    let mut ct = Ct::new("follow", Rt::Berth, &["sh", "-c", script]);
    ct.config.log.max_size = Some(1024);
    ct.config.log.max_file = 5;
    let got = start_and_follow(&mut ct);
    let want: Vec<String> = (0..60).map(|i| format!("follow-{i}\n")).collect();
    assert_eq!(got, want);
}

#[test]
fn follow_keeps_up_with_bursts_of_rotations() {
    require_root!();
    // Bursts of 100 lines (~6 files each) between quiet spells, faster than
    // the reader polls.
    let script = "j=0; while [ $j -lt 4 ]; do i=0; while [ $i -lt 100 ]; do \
                  echo burst-$j-$i; i=$((i+1)); done; j=$((j+1)); sleep 0.3; done";
    let mut ct = Ct::new("burst", Rt::Berth, &["sh", "-c", script]);
    ct.config.log.max_size = Some(1024);
    ct.config.log.max_file = 100;
    ct.config.wait_for_attach = false;
    let got = start_and_follow(&mut ct);
    let want: Vec<String> = (0..4)
        .flat_map(|j| (0..100).map(move |i| format!("burst-{j}-{i}\n")))
        .collect();
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len());
        let logged: Vec<String> = ct.logs().into_iter().map(|(_, l)| l).collect();
        let files: Vec<String> = std::fs::read_dir(ct.tmp.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        panic!(
            "followed {} lines, want {}; first difference at {first}: got {:?}; \
             the files hold {} lines ({}); files {files:?}",
            got.len(),
            want.len(),
            &got[first.saturating_sub(2)..(first + 15).min(got.len())],
            logged.len(),
            logged == want,
        );
    }
}

/// Starts the container and reads its log with `--follow` from a second
/// thread until the container exits (the reader must end by itself); returns
/// the entries read.
fn start_and_follow(ct: &mut Ct) -> Vec<String> {
    ct.start().expect("start");
    let got = Arc::new(Mutex::new(Vec::new()));
    let (config, state_dir, got2) = (
        ct.config.log.clone(),
        ct.state_dir().to_path_buf(),
        Arc::clone(&got),
    );
    let reader = std::thread::spawn(move || {
        let opts = LogReadOptions {
            follow: true,
            stdout: true,
            stderr: true,
            state_dir: Some(state_dir),
            ..Default::default()
        };
        logs::read(&config, &opts, &mut |_: LogStream, d: &[u8]| {
            if let Ok(mut g) = got2.lock() {
                g.push(String::from_utf8_lossy(d).into_owned());
            }
            Ok(())
        })
    });
    assert_eq!(ct.wait(), 0);
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    while !reader.is_finished() {
        assert!(std::time::Instant::now() < deadline, "follow did not end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    reader.join().expect("reader thread").expect("follow");
    let entries = got.lock().expect("lock").clone();
    entries
}
