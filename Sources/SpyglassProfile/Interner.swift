//===--- Interner.swift - values to dense ids, and back -------------------===//
//
// Every table of the profile model and of the writers is one of these: a value is given the next
// id the first time it is seen and the same id ever after, and the values are kept in id order, so
// the table a writer emits is `values` as it stands. Ids are UInt32 (a recording never holds four
// billion distinct frames; `intern` stops with a precondition failure rather than wrap).
//
//===----------------------------------------------------------------------===//

/// Hashable values to dense `UInt32` ids (0, 1, 2, … in order of first appearance), and the values
/// in id order.
package struct Interner<Value: Hashable & Sendable>: Sendable {
  /// The values, indexed by id.
  package private(set) var values: [Value] = []
  private var ids: [Value: UInt32] = [:]

  package init() {}

  /// The id of `value`, given the next one if it is new.
  @inline(__always)
  package mutating func intern(_ value: Value) -> UInt32 {
    insert(value).id
  }

  /// The id of `value`, and whether it was new.
  package mutating func insert(_ value: Value) -> (id: UInt32, inserted: Bool) {
    if let id = ids[value] { return (id, false) }
    precondition(values.count < Int(UInt32.max), "more than 2^32 - 1 distinct values interned")
    let id = UInt32(values.count)
    values.append(value)
    ids[value] = id
    return (id, true)
  }

  /// The id of `value` if it was interned.
  package func id(of value: Value) -> UInt32? { ids[value] }

  /// The value of `id` (which must have been handed out).
  package subscript(id: UInt32) -> Value { values[Int(id)] }

  package var count: Int { values.count }
  package var isEmpty: Bool { values.isEmpty }
}
