"""The build setting that compiles kill points in (wal/kill_point.h).

`--define=kill_points=1` does the same from the command line; this setting exists
because Bazel 4 cannot transition on --define, and the crash driver builds
wal_stress with kill points inside an ordinary `bazel test` (stress/kill_points.bzl).
"""

def _bool_setting_impl(ctx):
    return []

bool_setting = rule(
    implementation = _bool_setting_impl,
    build_setting = config.bool(flag = True),
    doc = "A boolean build setting (--//wal:kill_points=true).",
)
