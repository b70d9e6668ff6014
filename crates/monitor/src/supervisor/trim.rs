//! Letting go of code pages while the container is quiet.
//!
//! A monitor spends its life blocked in `poll`, but its resident set keeps
//! every code page it touched (start-up: config parsing, fork, spawning the
//! runtime, JSON; later: logging, attach, probes) plus the kernel's
//! fault-around neighbours (64 KiB around each fault): most of the
//! monitor's RSS. Those pages are clean and file-backed, so when the loop
//! has been idle for [`IDLE_AFTER`] the monitor drops them from its page
//! tables (`MADV_DONTNEED`) right before it blocks: they stay in the page
//! cache (shared with other monitors) and come back on a minor fault when
//! the loop wakes up. Between the `madvise` calls and the blocking `poll`
//! only this function and libc's `syscall` run, so few pages are touched
//! again before the process sleeps.
//!
//! Only segments that are never written are dropped: `PT_LOAD` segments
//! without `PF_W`, minus `PT_GNU_RELRO` (relocated at start-up: its pages
//! are private copies that `MADV_DONTNEED` would reset to the file's
//! contents). The executable cannot change in place while it runs
//! (ETXTBSY), so a re-faulted page holds the same bytes.

use std::ffi::c_void;
use std::time::Duration;

use nix::poll::PollFd;

/// Quiet time after which the monitor drops its code pages.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// The address ranges of this executable's read-only, never-relocated
/// pages.
pub struct CodePages {
    ranges: Vec<(usize, usize)>,
}

impl CodePages {
    pub fn locate() -> CodePages {
        let mut r = Ranges {
            done: false,
            ranges: Vec::new(),
        };
        // SAFETY: the callback only reads the program headers glibc passes
        // for the duration of the call and writes into `r` through `data`.
        unsafe {
            libc::dl_iterate_phdr(Some(collect), (&raw mut r).cast::<c_void>());
        }
        CodePages { ranges: r.ranges }
    }

    /// Drops the pages, then waits in poll(2) like `nix::poll::poll`
    /// (`timeout_ms` -1 for none). Returns poll's raw result: the number of
    /// ready fds, or -1 with errno set.
    pub fn release_and_poll(&self, fds: &mut [PollFd<'_>], timeout_ms: i32) -> i64 {
        for &(start, end) in &self.ranges {
            // SAFETY: the range lies inside a read-only segment of this
            // executable that nothing writes to (see the module docs); the
            // kernel maps its pages again from the page cache on access.
            unsafe {
                libc::syscall(libc::SYS_madvise, start, end - start, libc::MADV_DONTNEED);
            }
        }
        // SAFETY: PollFd is repr(transparent) over libc::pollfd, and the
        // slice is valid and exclusively borrowed for the call.
        unsafe {
            libc::syscall(
                libc::SYS_poll,
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len(),
                timeout_ms,
            )
        }
    }
}

struct Ranges {
    done: bool,
    ranges: Vec<(usize, usize)>,
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: `data` is the `Ranges` passed by CodePages::locate, alive and
    // not otherwise borrowed during dl_iterate_phdr.
    let r = unsafe { &mut *data.cast::<Ranges>() };
    if r.done {
        return 1;
    }
    // The first object reported is the executable itself.
    r.done = true;
    // SAFETY: glibc passes a valid info for the duration of the callback.
    let info = unsafe { &*info };
    if info.dlpi_phdr.is_null() {
        return 1;
    }
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
    let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let base = info.dlpi_addr as usize;
    let page = page_size();
    let relro: Vec<(usize, usize)> = phdrs
        .iter()
        .filter(|p| p.p_type == libc::PT_GNU_RELRO)
        .map(|p| {
            let start = base + p.p_vaddr as usize;
            (
                start & !(page - 1),
                (start + p.p_memsz as usize).next_multiple_of(page),
            )
        })
        .collect();
    for p in phdrs {
        if p.p_type != libc::PT_LOAD || p.p_flags & libc::PF_W != 0 {
            continue;
        }
        // Whole pages inside the segment only.
        let start = (base + p.p_vaddr as usize).next_multiple_of(page);
        let end = (base + p.p_vaddr as usize + p.p_filesz as usize) & !(page - 1);
        let mut pieces = vec![(start, end)];
        for &(rs, re) in &relro {
            pieces = pieces
                .into_iter()
                .flat_map(|(s, e)| [(s, e.min(rs)), (s.max(re), e)])
                .filter(|(s, e)| s < e)
                .collect();
        }
        r.ranges.extend(pieces);
    }
    1
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|n| n.is_power_of_two())
        .unwrap_or(4096)
}
