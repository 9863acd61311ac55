//===--- LayoutMember.swift - a layout member that must be there ----------===//
//
// PythonLayout members are Optional: nil where the version has no such member. A reader that
// needs one asks for it here and gets a ReadFault that names it when it is absent, so an absent
// member can never become an offset in arithmetic.
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

extension Optional where Wrapped == Int {
  /// The member's offset, or a fault saying the interpreter's layout has no `name`.
  @inline(__always)
  func member(_ name: StaticString) throws(ReadFault) -> Int {
    guard let self else { throw .implausible("this interpreter's layout has no \(name)") }
    return self
  }
}
