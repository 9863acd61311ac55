//===--- SampleTimer.swift - when the next sample is taken ----------------===//
//
// Sample instants of a recording: one in every interval of a regular grid of 1/rate seconds, at a
// point inside its interval that moves on by the golden ratio of the interval each time (a Weyl
// sequence from a random start). The count is what was asked for (a 2 s recording at 100 Hz has
// 200 ticks, give or take the one at the edge), so the achieved rate is the asked one. And the
// phases within the interval are spread as evenly as any sequence can spread them (discrepancy
// O(log n / n), against O(1/√n) for independent random phases), whatever the program's period:
// a function that runs for 3 ms of every 10 ms is sampled 30% of the time, within a point after
// a few hundred samples, never always or never as a fixed grid would. A Poisson process avoids
// aliasing too but its counts spread by ±√n (161 to 231 samples where 200 were asked).
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

package struct SampleTimer {
  package let rate: Double
  private var phase: Double
  private var index: UInt64 = 0
  /// The instant of the tick `advance` chose last, in seconds since the start.
  package private(set) var nextTick: Double = 0

  package init(rate: Double, seed: UInt64 = UInt64(monotonicNanoseconds())) {
    self.rate = rate
    // The start phase: the seed scrambled (splitmix64's finaliser) into [0, 1).
    var z = seed &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    phase = Double(z >> 11) / 9_007_199_254_740_992.0
  }

  /// 1/φ: the step of the phase, the irrational number worst approximated by fractions.
  static let goldenStep = 0.618_033_988_749_894_9

  /// Moves to the next tick: interval k (starting at 0) gets the instant (k + phaseₖ) / rate.
  package mutating func advance() {
    nextTick = (Double(index) + phase) / rate
    index += 1
    phase += Self.goldenStep
    if phase >= 1 { phase -= 1 }
  }
}
