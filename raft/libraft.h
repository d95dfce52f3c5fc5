// libraft's C headers with C linkage: raft.h, raft/uv.h and raft/fixture.h
// (libraft 0.15) have no `extern "C"` guards of their own. Include this, never
// them directly, from C++.

#ifndef SEGWAL_RAFT_LIBRAFT_H_
#define SEGWAL_RAFT_LIBRAFT_H_

#include <uv.h>  // has its own guards; raft/uv.h includes it

extern "C" {
#include <raft.h>
#include <raft/fixture.h>
#include <raft/uv.h>
}

#endif  // SEGWAL_RAFT_LIBRAFT_H_
