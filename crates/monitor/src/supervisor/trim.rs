//! Letting go of start-up code once the container runs.
//!
//! A monitor spends its life blocked in `poll`, but its resident set keeps
//! every code page it touched while starting (config parsing, fork, the
//! runtime's spawn, JSON) plus the kernel's fault-around neighbours (64 KiB
//! around each fault): about 1 MiB of text and read-only data in the static
//! binary, most of the monitor's RSS. Those pages are clean and file-backed,
//! so the monitor hands them back once the container started:
//!
//! - `MADV_RANDOM` first, so that a later fault reads just the page it
//!   needs (no readahead) instead of pulling a 64 KiB window back in;
//! - then `MADV_PAGEOUT`, which drops the pages from the page tables and
//!   reclaims those no other process maps;
//! - then `MADV_DONTNEED` for the pages `MADV_PAGEOUT` skips because other
//!   monitors map them too: they leave this process's page tables but stay
//!   cached for the others (otherwise they would count fully against this
//!   monitor once the others exit).
//!
//! The cost is a few page reads the first time the loop runs code it has
//! not run since (the first output of a container, its exit); the working
//! set then stays resident. Only segments that are never written are
//! touched: `PT_LOAD` segments without `PF_W`, minus `PT_GNU_RELRO`
//! (relocated at start-up: its pages are private copies). The executable
//! cannot change in place while it runs (ETXTBSY), so a re-read page holds
//! the same bytes. Kernels without `MADV_PAGEOUT` (< 5.4) ignore the call.

use std::ffi::c_void;

struct Ranges {
    done: bool,
    ranges: Vec<(usize, usize)>,
}

/// Hands the monitor's read-only, never-relocated pages back to the kernel.
pub fn drop_startup_pages() {
    let mut r = Ranges {
        done: false,
        ranges: Vec::new(),
    };
    // SAFETY: the callback only reads the program headers glibc passes for
    // the duration of the call and writes into `r` through `data`.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&raw mut r).cast::<c_void>());
    }
    for (start, end) in r.ranges {
        // SAFETY: the range lies inside a read-only segment of this
        // executable that nothing writes to (see the module docs); the
        // kernel re-reads its pages from the file on the next access.
        unsafe {
            libc::madvise(start as *mut c_void, end - start, libc::MADV_RANDOM);
            libc::madvise(start as *mut c_void, end - start, libc::MADV_PAGEOUT);
            libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: `data` is the `Ranges` passed by drop_startup_pages, alive and
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
