//===--- PythonModel.swift - how one version's interpreter is walked ------===//
//
// The non-offset facts the walkers need about a version: which frame model, which line table,
// where the GIL holder is recorded, how instance dicts are stored. Offsets are in PythonLayout.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts

public struct PythonModel: Sendable, Equatable {
  public enum FrameModel: Sendable, Equatable {
    /// ≤3.10: `tstate->frame`, a chain of PyFrameObject through `f_back`.
    case frameObjects
    /// 3.11/3.12: `tstate->cframe->current_frame`, a chain of _PyInterpreterFrame.
    case interpreterFramesViaCFrame
    /// 3.13+: `tstate->current_frame`.
    case interpreterFrames
  }

  public enum GILModel: Sendable, Equatable {
    /// ≤3.6: the `_PyThreadState_Current` global holds the holder's PyThreadState*.
    case threadStateCurrentSymbol
    /// 3.7–3.11: `_PyRuntime.gilstate.tstate_current`.
    case runtimeThreadStateCurrent
    /// 3.12+: `interp->ceval.gil`: `locked` and `last_holder`.
    case interpreterGIL
  }

  public let major: Int
  public let minor: Int
  public let frameModel: FrameModel
  public let lineTable: LineTableFormat
  public let gilModel: GILModel
  /// Whether `_PyRuntime` exists (3.7+); before, `interp_head` is the entry point.
  public let hasRuntimeState: Bool
  /// Whether code objects carry `co_qualname` (3.11+).
  public let hasQualifiedNames: Bool
  /// The `owner` value of frames that belong to the C stack (3.12+), skipped by the walker.
  public let cStackOwner: UInt8?
  /// Dict keys objects record log2 sizes and a kind (3.11+).
  public let dictKeysHaveLog2Size: Bool
  /// Instances may keep their attributes in a managed dict (3.11+).
  public let hasManagedDict: Bool
  /// Instances may keep their attributes inline after the object (3.13+).
  public let hasInlineValues: Bool

  public static let managedDictFlag: UInt64 = 1 << 4
  public static let inlineValuesFlag: UInt64 = 1 << 2

  public init?(major: Int, minor: Int) {
    self.major = major
    self.minor = minor
    switch (major, minor) {
    case (2, 7):
      frameModel = .frameObjects
      lineTable = .lnotab27
    case (3, 6...9):
      frameModel = .frameObjects
      lineTable = .lnotab
    case (3, 10):
      frameModel = .frameObjects
      lineTable = .linetable310
    case (3, 11), (3, 12):
      frameModel = .interpreterFramesViaCFrame
      lineTable = .locationTable
    case (3, 13...):
      frameModel = .interpreterFrames
      lineTable = .locationTable
    default:
      return nil
    }
    let v = major * 100 + minor
    gilModel = v <= 306 ? .threadStateCurrentSymbol : v <= 311 ? .runtimeThreadStateCurrent : .interpreterGIL
    hasRuntimeState = v >= 307
    hasQualifiedNames = v >= 311
    cStackOwner = v >= 314 ? 4 : v >= 312 ? 3 : nil
    dictKeysHaveLog2Size = v >= 311
    hasManagedDict = v >= 311
    hasInlineValues = v >= 313
  }
}
