// A real full disk: a 1 MiB tmpfs mounted for the test (needs root and
// permission to mount; otherwise the test says why it is skipped, and the
// ENOSPC cases of wal/wal_crash_test.cc, injected through FaultInjectionEnv,
// cover the same promises).
//
// Each variant fills the file system with a WAL on the POSIX Env until a write
// or sync fails, then checks what segwal promises about a full disk:
//   - the error is ResourceExhausted and names the segment file;
//   - the instance is poisoned: later Append and Sync fail too;
//   - reopening with the disk still full succeeds (recovery must not need
//     space) and every record acknowledged by a successful Sync is there,
//     contiguous and intact, nothing else;
//   - once space is freed, appends continue after the recovered records and
//     survive another reopen.

#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testutil/testutil.h"
#include "wal/segmented_wal.h"

namespace segwal {
namespace {

using ::testing::HasSubstr;
using testutil::Random;

// Mounts a tmpfs of `size` at a fresh directory; unmounts on destruction.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    if (geteuid() != 0) {
      why_not_ = "not running as root";
      return;
    }
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      why_not_ = absl::StrCat("mkdir ", dir, ": ", strerror(errno));
      return;
    }
    const std::string opts = "size=" + size + ",mode=0755";
    if (mount("segwal_test_tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      why_not_ = absl::StrCat("mount -t tmpfs -o ", opts, " ", dir,
                              " failed: ", strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string why_not_;
};

// Fills `path` with `bytes` zero bytes (written, so tmpfs pages are used).
bool WriteBallast(const std::string& path, size_t bytes) {
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::string chunk(4096, 'b');
  for (size_t done = 0; done < bytes; done += chunk.size()) {
    if (fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size()) break;
  }
  return fclose(f) == 0;
}

struct Variant {
  uint64_t segment_size;
  size_t write_buffer;
  uint64_t max_record;
  int sync_every;
};

std::string Payload(uint64_t lsn, size_t len) {
  std::string p = absl::StrCat("lsn ", lsn, " ");
  Random r(lsn);
  p += r.RandomString(len);
  return p;
}

// Checks the log holds exactly LSNs [1, n) as written, n > acked.
void ExpectLog(SegmentedWal* wal, uint64_t acked,
               const std::vector<std::string>& written) {
  ASSERT_OK_AND_ASSIGN(std::vector<WalRecord> got, wal->Replay());
  ASSERT_GE(got.size(), acked) << "acknowledged records were lost";
  ASSERT_LE(got.size(), written.size()) << "phantom records";
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].lsn, i + 1);
    ASSERT_EQ(got[i].payload, written[i]) << "LSN " << i + 1;
  }
}

TEST(RealDiskFullTest, FullTmpfsPoisonsAndReopensWithoutSpace) {
  testutil::TempDir tmp;
  {
    TmpfsMount probe(tmp.Join("probe"), "1m");
    if (!probe.mounted()) {
      printf("real full-disk test SKIPPED: %s. The FaultInjectionEnv ENOSPC "
             "cases (wal/wal_crash_test.cc) cover the same promises.\n",
             probe.why_not().c_str());
      printf("SEGWAL_STATS real_disk_full_runs=0\n");
      GTEST_SKIP() << probe.why_not();
    }
  }
  const uint64_t seed = testutil::TestSeed(0xd15c);
  Random rnd(seed);
  // A few fixed shapes, then random ones: the disk fills up while creating a
  // segment, writing records, syncing, or sealing, depending on the shape.
  std::vector<Variant> variants = {
      {16 << 10, 256, 3000, 1},       {64 << 10, 4 << 10, 9000, 5},
      {256 << 10, 64 << 10, 500, 50}, {8 << 10, 1 << 10, 20000, 3},
      {32 << 10, 512, 100, 2},        {128 << 10, 16 << 10, 60000, 10},
  };
  const int64_t random_variants = testutil::EnvInt("SEGWAL_DISK_FULL_RUNS", 34);
  for (int64_t i = 0; i < random_variants; ++i) {
    variants.push_back({uint64_t{4096} << rnd.Uniform(7),
                        size_t{128} << rnd.Uniform(10), 1 + rnd.Uniform(30000),
                        1 + static_cast<int>(rnd.Uniform(20))});
  }
  int runs = 0;
  for (size_t vi = 0; vi < variants.size(); ++vi) {
    const Variant& v = variants[vi];
    SCOPED_TRACE(absl::StrCat("variant ", vi, " seed ", seed));
    const std::string mnt = tmp.Join(absl::StrCat("mnt", vi));
    TmpfsMount m(mnt, "1m");
    ASSERT_TRUE(m.mounted()) << m.why_not();
    // Most of the space goes to ballast; the rest fills up with the WAL.
    const size_t ballast = (600 + rnd.Uniform(200)) << 10;
    ASSERT_TRUE(WriteBallast(mnt + "/ballast", ballast));

    SegmentedWalOptions o;
    o.wal_dir = mnt + "/wal";
    o.segment_target_size = v.segment_size;
    o.write_buffer_size = v.write_buffer;
    std::vector<std::string> written;
    uint64_t acked = 0;
    absl::Status error;
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      for (int i = 0; i < 100000 && error.ok(); ++i) {
        const std::string p =
            Payload(written.size() + 1, rnd.Uniform(v.max_record));
        auto lsn = wal->Append(1, 2, 3, 4, p);
        if (!lsn.ok()) {
          error = lsn.status();
          break;
        }
        ASSERT_EQ(*lsn, written.size() + 1);
        written.push_back(p);
        if (written.size() % v.sync_every == 0) {
          absl::Status s = wal->Sync();
          if (!s.ok()) {
            error = s;
            break;
          }
          acked = written.size();
        }
      }
      ASSERT_FALSE(error.ok()) << "a 1 MiB file system never filled up";
      EXPECT_THAT(error, testutil::StatusIs(absl::StatusCode::kResourceExhausted))
          << error;
      EXPECT_THAT(std::string(error.message()), HasSubstr(o.wal_dir + "/"))
          << "the error must name the file";
      EXPECT_THAT(std::string(error.message()), HasSubstr(".wal"));
      // Poisoned: nothing more is accepted, with the same error.
      EXPECT_EQ(wal->poisoned_status().code(), error.code());
      EXPECT_THAT(wal->Append(1, 2, 3, 4, "after"),
                  testutil::StatusIs(error.code()));
      EXPECT_THAT(wal->Sync(), testutil::StatusIs(error.code()));
    }
    printf("variant %zu: disk full after %zu records (%" PRIu64
           " acknowledged): %s\n",
           vi, written.size(), acked, error.ToString().c_str());

    // Reopen with the disk still full: recovery needs no space.
    {
      auto wal = SegmentedWal::Open(o);
      ASSERT_TRUE(wal.ok()) << "reopening a full disk failed: " << wal.status();
      ExpectLog(wal->get(), acked, written);
      if (HasFatalFailure()) return;
      written.resize((*wal)->next_lsn() - 1);
    }
    // Space again: appends continue where the log ends and survive a reopen.
    ASSERT_EQ(unlink((mnt + "/ballast").c_str()), 0);
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      for (int i = 0; i < 20; ++i) {
        const std::string p = Payload(written.size() + 1, rnd.Uniform(2000));
        ASSERT_OK_AND_ASSIGN(uint64_t lsn, wal->Append(1, 2, 3, 4, p));
        ASSERT_EQ(lsn, written.size() + 1);
        written.push_back(p);
      }
      ASSERT_OK(wal->Sync());
      acked = written.size();
    }
    {
      ASSERT_OK_AND_ASSIGN(auto wal, SegmentedWal::Open(o));
      ExpectLog(wal.get(), acked, written);
      EXPECT_EQ(wal->next_lsn(), written.size() + 1);
    }
    ++runs;
  }
  printf("SEGWAL_STATS real_disk_full_runs=%d acked_lost=0 phantom=0\n", runs);
}

}  // namespace
}  // namespace segwal
