"""The external repositories segwal builds with, for its own WORKSPACE and for yours.

segwal builds offline (Debian's bazel-bootstrap, Bazel 4.2.3): Bazel's rules come
from Debian packages or from two tiny shims in third_party/, and libraries from
/usr (Debian -dev packages, see tools/install_deps.sh). This file is the one list
of those repositories. A project that uses segwal writes:

    local_repository(
        name = "segwal",
        path = "/path/to/segwal",  # relative paths are from your workspace root
    )

    load("@segwal//:repositories.bzl", "segwal_dependencies")

    segwal_dependencies()

and depends on "@segwal//wal". segwal's own labels are relative to its
repository, so another name works too.

Any repository the WORKSPACE defined before the call is left alone, so a project
that has its own @absl (say) keeps it; its targets must then have the names
segwal uses (third_party/system/*.BUILD).

The shims are found through labels, not paths: a local_repository path is taken
relative to the workspace that declares it, which is the consumer's, not segwal's.
"""

# Debian's bazel-rules-java and bazel-platforms.
_DEBIAN_BAZEL_RULES = {
    "rules_java": "/usr/share/bazel/rules/java",
    "platforms": "/usr/share/bazel/platforms",
}

# In-tree shims: rules_cc (cc/defs.bzl re-exports the native cc_* rules) and
# remote_coverage_tools (empty filegroups, so Bazel never fetches its coverage
# tools). Each is named by its WORKSPACE file.
_SHIMS = {
    "rules_cc": Label("//third_party/rules_cc:WORKSPACE"),
    "remote_coverage_tools": Label("//third_party/remote_coverage_tools:WORKSPACE"),
}

# System libraries, each a new_local_repository on /usr with a BUILD file in
# third_party/system/.
_SYSTEM_LIBRARIES = [
    "absl",
    "benchmark",
    "boringssl",
    "gflags",
    "gtest",
    "isal",
    "liburing",
    "libraft",
    "libuv",
    "snappy",
]

def _in_tree_repository_impl(repository_ctx):
    # local_repository, but on the directory holding a label's file: it resolves
    # the same from segwal's own WORKSPACE and from a consumer's.
    directory = repository_ctx.path(repository_ctx.attr.marker).dirname
    for child in directory.readdir():
        repository_ctx.symlink(child, child.basename)

_in_tree_repository = repository_rule(
    implementation = _in_tree_repository_impl,
    attrs = {
        "marker": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "A file at the root of the directory to expose as a repository.",
        ),
    },
    local = True,
    doc = "A repository made of an in-tree directory of segwal.",
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def segwal_dependencies():
    """Declares every repository segwal needs that the WORKSPACE has not declared yet."""
    for name, path in _DEBIAN_BAZEL_RULES.items():
        _maybe(native.local_repository, name, path = path)
    for name, marker in _SHIMS.items():
        _maybe(_in_tree_repository, name, marker = marker)
    for name in _SYSTEM_LIBRARIES:
        _maybe(
            native.new_local_repository,
            name,
            build_file = str(Label("//third_party/system:%s.BUILD" % name)),
            path = "/usr",
        )
