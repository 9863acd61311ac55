//===--- PoissonTimer.swift - when the next sample is taken ---===//
//
// Sample instants of a recording.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

/// Exponentially distributed intervals: sample instants form a Poisson process with mean `rate`,
/// so sampling never locks onto a periodic pattern in the program.
package struct PoissonTimer {
  package let rate: Double
  private var state: UInt64
  package private(set) var nextTick: Double = 0

  package init(rate: Double, seed: UInt64 = UInt64(monotonicNanoseconds())) {
    self.rate = rate
    self.state = seed | 1
  }

  package mutating func advance() {
    // xorshift64*; u in (0, 1].
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    let bits = (state &* 2_685_821_657_736_338_717) >> 11
    let u = (Double(bits) + 1) / 9_007_199_254_740_992.0
    nextTick += -naturalLog(u) / rate
  }
}
