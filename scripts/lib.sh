# Shared settings for scripts/setup, scripts/test and scripts/run-notebooks. Source it; do not run it.
#
# Every location can be moved with an environment variable:
#   GOMOR_VENV          Python virtual environment for Jupyter (default: <repository>/.venv)
#   GOMOR_PJRT_DIR      folder for the PJRT plugins (default: $HOME/.local/lib/go-xla, searched by go-xla
#                       and by the backend package; any other folder must also be put in PJRT_PLUGIN_LIBRARY_PATH)
#   GOMOR_WHEEL_CACHE   downloaded plugin wheels (default: $HOME/.cache/gomor/wheels)

GOMOR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOMOR_VENV="${GOMOR_VENV:-$GOMOR_ROOT/.venv}"
GOMOR_PJRT_DIR="${GOMOR_PJRT_DIR:-$HOME/.local/lib/go-xla}"
GOMOR_WHEEL_CACHE="${GOMOR_WHEEL_CACHE:-$HOME/.cache/gomor/wheels}"

# go install puts binaries (gonb, goimports) in GOBIN, or GOPATH/bin when GOBIN is unset.
gomor_go_bin() {
	local bin
	bin="$(go env GOBIN)"
	if [[ -z "$bin" ]]; then
		bin="$(go env GOPATH | cut -d: -f1)/bin"
	fi
	echo "$bin"
}

# Put the virtual environment, the Go binaries and the Go toolchain first on PATH, because GoNB
# runs `go` and `goimports` from the PATH of the process that starts Jupyter.
gomor_export_path() {
	local go_root_bin
	go_root_bin="$(go env GOROOT)/bin"
	export PATH="$GOMOR_VENV/bin:$(gomor_go_bin):$go_root_bin:$PATH"

	# The backend package already disables GoMLX's PJRT auto-installer, which downloads from GitHub
	# and waits when there is no route; this also covers programs that bypass that package.
	export GOMLX_NO_AUTO_INSTALL=1
}

gomor_error() {
	echo "error: $*" >&2
}

# gomor_require_writable FOLDER WHAT VARIABLE creates FOLDER and fails with one message naming
# VARIABLE, the setting that moves it, when FOLDER cannot be written.
gomor_require_writable() {
	local folder="$1" what="$2" variable="$3"
	local probe="$folder/.gomor-write-check.$$"
	if ! mkdir -p "$folder" 2>/dev/null || ! : >"$probe" 2>/dev/null; then
		gomor_error "cannot write to $folder ($what); set $variable to a writable folder, or run as a user who can write there"
		exit 1
	fi
	rm -f "$probe"
}
