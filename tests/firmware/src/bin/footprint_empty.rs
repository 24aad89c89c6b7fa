//! The baseline of the footprint: a firmware that does nothing (the vector
//! table, the reset handler, a panic handler that loops). scripts/footprint
//! subtracts its size from the others'.
#![no_std]
#![no_main]

use panic_halt as _;

#[cortex_m_rt::entry]
fn main() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
