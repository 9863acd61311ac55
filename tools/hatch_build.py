"""hatchling build hook: the wheel carries a release build of the spyglass executable.

`pip wheel .` (or `pip install .`, or a build from the sdist) runs this before hatchling packs the
wheel. It builds `spyglass` with the local Swift toolchain (`swift build -c release --product
spyglass`, scratch path `.build-wheel` so it never waits on a developer's `.build`; set
SPYGLASS_SCRATCH_PATH to use another), checks that the result is the fully static executable the
platform tags promise and that its `--version` is the wheel's version (both come from
`SpyglassCommand.version`, read by hatch's regex version source), and hands hatchling:

- the executable, stripped of its debug information and symbol table, as the shared script
  `spyglass-VERSION.data/scripts/spyglass` (mode 0755), which installers put on PATH;
- `spyglass/_version.py`;
- the tag `py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64`: any
  Python (the package itself is pure Python, importable on 2.7), any libc (nothing is linked
  dynamically), x86_64 Linux.

Without a Swift toolchain the build stops with one sentence saying which one is needed.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TAG = "py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64"
MINIMUM_SWIFT = (6, 3)


def fail(sentence):
    """Stops the build with `sentence` alone (pip shows it; no traceback)."""
    sys.stderr.write("\nspyglass: %s\n\n" % sentence)
    sys.stderr.flush()
    raise SystemExit("spyglass: " + sentence)


class SpyglassBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        if sys.platform != "linux" or os.uname().machine != "x86_64":
            fail("the spyglass wheel is built on x86_64 Linux (the platform Spyglass profiles); this is %s %s."
                 % (sys.platform, os.uname().machine))
        wheel_version = self.metadata.version
        swift = self.find_swift()
        scratch = os.environ.get("SPYGLASS_SCRATCH_PATH") or os.path.join(self.root, ".build-wheel")
        command = [swift, "build", "-c", "release", "--product", "spyglass", "--package-path", self.root,
                   "--scratch-path", scratch]
        self.app.display_info("Building the spyglass executable: " + " ".join(command))
        status = subprocess.call(command, stdout=sys.stderr)
        if status != 0:
            fail("`%s` failed (exit status %d); its output is above." % (" ".join(command), status))
        bin_path = subprocess.check_output(command + ["--show-bin-path"]).decode().strip()
        built = os.path.join(bin_path, "spyglass")
        if not os.access(built, os.X_OK):
            fail("the Swift build did not produce %s." % built)
        self.check_static(built)
        reported = subprocess.check_output([built, "--version"]).decode().strip()
        if reported != "spyglass %s" % wheel_version:
            fail("the executable says '%s' but the wheel's version is %s; both come from "
                 "spyglassVersion in Sources/SpyglassOutput/OutputFormat.swift: rebuild." % (reported, wheel_version))

        self.staging = tempfile.mkdtemp(prefix="spyglass-wheel-")
        executable = os.path.join(self.staging, "spyglass")
        if shutil.which("strip") and subprocess.call(["strip", "-o", executable, built]) == 0:
            pass
        else:
            shutil.copyfile(built, executable)
        os.chmod(executable, 0o755)
        version_file = os.path.join(self.staging, "_version.py")
        with open(version_file, "w") as handle:
            handle.write('__version__ = "%s"\n' % wheel_version)

        build_data["shared_scripts"][executable] = "spyglass"
        build_data["force_include"][version_file] = "spyglass/_version.py"
        build_data["tag"] = TAG
        build_data["pure_python"] = False

    def finalize(self, version, build_data, artifact_path):
        staging = getattr(self, "staging", None)
        if staging:
            shutil.rmtree(staging, ignore_errors=True)

    def find_swift(self):
        swift = os.environ.get("SPYGLASS_SWIFT") or shutil.which("swift")
        needed = "a Swift %d.%d toolchain (https://www.swift.org/install/linux/, `swift` on PATH)" % MINIMUM_SWIFT
        if not swift:
            fail("building spyglass from source needs %s, and none was found; install one, or install a prebuilt "
                 "spyglass wheel (pip install --only-binary spyglass spyglass)." % needed)
        try:
            text = subprocess.check_output([swift, "--version"], stderr=subprocess.STDOUT).decode("utf-8", "replace")
        except (OSError, subprocess.CalledProcessError) as error:
            fail("building spyglass from source needs %s; `%s --version` failed (%s)." % (needed, swift, error))
        match = re.search(r"Swift version (\d+)\.(\d+)", text)
        if not match or (int(match.group(1)), int(match.group(2))) < MINIMUM_SWIFT:
            found = match.group(0) if match else text.strip().splitlines()[0] if text.strip() else "nothing"
            fail("building spyglass from source needs %s; `%s --version` says %s." % (needed, swift, found))
        return swift

    def check_static(self, path):
        """The tags promise no shared library at all: no program interpreter, no dynamic section."""
        with open(path, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:
                fail("%s is not a 64-bit ELF executable." % path)
            program_headers = int.from_bytes(header[32:40], "little")
            entry_size = int.from_bytes(header[54:56], "little")
            count = int.from_bytes(header[56:58], "little")
            handle.seek(program_headers)
            table = handle.read(entry_size * count)
        for index in range(count):
            kind = int.from_bytes(table[index * entry_size:index * entry_size + 4], "little")
            if kind in (2, 3):  # PT_DYNAMIC, PT_INTERP
                fail("%s is linked dynamically, but the wheel's tags promise a fully static executable "
                     "(Package.swift links it with -static-executable)." % path)
