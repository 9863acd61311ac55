//===--- ErrorReport.swift - a failure as one JSON object -------------------===//
//
// What a failing command writes to SPYGLASS_ERROR_FILE (SpyglassCLI's Failure.swift says when):
// `{"kind": …, "message": …, "exit_code": …}` and a newline.
//
//===----------------------------------------------------------------------===//

package enum ErrorReport {
  package static func json(kind: String, message: String, exitCode: Int32) -> [UInt8] {
    var out: [UInt8] = []
    out.append("{\"kind\":")
    out.append(json: kind)
    out.append(",\"message\":")
    out.append(json: message)
    out.append(",\"exit_code\":")
    out.append(decimal: Int64(exitCode))
    out.append("}\n")
    return out
  }
}
