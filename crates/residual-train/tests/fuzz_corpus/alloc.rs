//! A global allocator that counts, per thread, the bytes allocated and not
//! yet freed, and their peak since the last [`start`]: how the corpus tests
//! see that a parser allocated out of proportion to its input. An
//! allocation of more than [`ABORT_BYTES`] while a parser runs is refused
//! after the input is written to stderr, so that the process aborts with
//! the input that asked for it instead of taking the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

/// No parser may ask for this much for any input of the corpus tests.
pub const ABORT_BYTES: usize = 1 << 30;

/// The counting allocator (the test binary's `#[global_allocator]`).
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// The input being parsed on this thread (pointer, length), if any.
    static INPUT: Cell<(*const u8, usize)> = const { Cell::new((std::ptr::null(), 0)) };
}

fn add(bytes: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// Whether an allocation of `size` bytes may go ahead; writes the input in
/// flight to stderr (without allocating) when it may not.
fn allowed(size: usize) -> bool {
    if size <= ABORT_BYTES {
        return true;
    }
    let Ok((ptr, len)) = INPUT.try_with(Cell::get) else {
        return true;
    };
    if ptr.is_null() {
        return true;
    }
    // SAFETY: `measure` keeps the input alive while the pointer is set.
    let input = unsafe { std::slice::from_raw_parts(ptr, len) };
    let mut err = raw_stderr();
    let err = &mut *err;
    let _ = writeln!(err, "a parser asked for {size} bytes; its input, hex:");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in input.chunks(32) {
        let mut line = [b'\n'; 65];
        for (i, b) in chunk.iter().enumerate() {
            line[2 * i] = HEX[(b >> 4) as usize];
            line[2 * i + 1] = HEX[(b & 15) as usize];
        }
        let _ = err.write_all(&line[..2 * chunk.len() + 1]);
    }
    false
}

/// Standard error, unbuffered and past the test harness's capture (which
/// an abort would lose).
#[cfg(unix)]
fn raw_stderr() -> std::mem::ManuallyDrop<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 2 is open for the life of the process; ManuallyDrop never closes it.
    std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(2) })
}

#[cfg(not(unix))]
fn raw_stderr() -> std::mem::ManuallyDrop<std::io::Stderr> {
    std::mem::ManuallyDrop::new(std::io::stderr())
}

// SAFETY: every call is forwarded to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !allowed(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` with `input` marked as the input in flight and returns its
/// result and the peak of the bytes it had allocated and not freed on this
/// thread at any moment.
pub fn measure<R>(input: &[u8], f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    INPUT.with(|i| i.set((input.as_ptr(), input.len())));
    let r = f();
    INPUT.with(|i| i.set((std::ptr::null(), 0)));
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as usize)
}
