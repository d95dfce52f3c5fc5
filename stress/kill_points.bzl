"""with_kill_points: the same binary, built with kill points (wal/kill_point.h).

The crash driver needs wal_stress twice in one `bazel test` (without and with kill
points), so the kill-point build is a configuration transition to
`--//wal:kill_points=true` (Bazel 4 cannot transition on --define), not a flag the
person running the tests has to remember. Every other option (-c, --config=asan,
...) is kept: under ASan the kill-point binary is an ASan binary too.
"""

def _kill_points_transition_impl(settings, attr):
    return {"//wal:kill_points": True}

_kill_points_transition = transition(
    implementation = _kill_points_transition_impl,
    inputs = [],
    outputs = ["//wal:kill_points"],
)

def _with_kill_points_impl(ctx):
    info = ctx.attr.binary[0][DefaultInfo]
    src = info.files_to_run.executable
    out = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(output = out, target_file = src, is_executable = True)
    runfiles = ctx.runfiles(files = [out, src]).merge(info.default_runfiles)
    return [DefaultInfo(executable = out, files = depset([out]), runfiles = runfiles)]

with_kill_points = rule(
    implementation = _with_kill_points_impl,
    doc = "An executable: `binary` built with --define=kill_points=1.",
    attrs = {
        "binary": attr.label(
            cfg = _kill_points_transition,
            executable = True,
            mandatory = True,
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    executable = True,
)
