// db_bench_wal's command-line flags (defined in db_bench_wal.cc, where each
// says what it does; `db_bench_wal --help` lists them), declared for the
// files that read them.

#ifndef SEGWAL_DB_BENCH_WAL_FLAGS_H_
#define SEGWAL_DB_BENCH_WAL_FLAGS_H_

#include <gflags/gflags.h>

DECLARE_string(benchmarks);
DECLARE_int64(num);
DECLARE_int64(value_size);
DECLARE_int32(threads);
DECLARE_bool(sync);
DECLARE_int64(segment_size);
DECLARE_int64(write_buffer_size);
DECLARE_string(compression);
DECLARE_bool(preallocate_segments);
DECLARE_bool(use_io_uring);
DECLARE_bool(background_preallocation);
DECLARE_bool(background_sealing);
DECLARE_int64(max_seals_in_flight);
DECLARE_uint64(bytes_per_sync);
DECLARE_uint64(group_commit_wait_micros);
DECLARE_int64(recycle_segments);
DECLARE_int64(replay_threads);
DECLARE_double(compression_ratio);
DECLARE_bool(encrypt);
DECLARE_bool(use_direct_io);
DECLARE_string(wal_dir);
DECLARE_bool(use_existing_wal);
DECLARE_bool(histogram);
DECLARE_int64(seed);
DECLARE_double(duration);
DECLARE_double(stats_interval_seconds);
DECLARE_bool(statistics);
DECLARE_bool(compare);
DECLARE_int64(batch_size);
DECLARE_int64(open_count);
DECLARE_string(recovery_mode);
DECLARE_string(rawsync_prealloc);
DECLARE_bool(warmup_page_cache);

#endif  // SEGWAL_DB_BENCH_WAL_FLAGS_H_
