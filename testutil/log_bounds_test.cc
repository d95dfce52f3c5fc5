// CheckLogBounds: the durability rule of a recovered log, one situation each.

#include "testutil/log_bounds.h"

#include "gtest/gtest.h"

namespace segwal {
namespace testutil {
namespace {

RecoveredLogBounds Log(uint64_t first, uint64_t last) {
  RecoveredLogBounds b;
  b.empty = false;
  b.first = first;
  b.last = last;
  b.next_lsn = last + 1;
  return b;
}

ExpectedLogBounds Want(uint64_t first_min, uint64_t first_max, uint64_t acked) {
  ExpectedLogBounds w;
  w.first_min = first_min;
  w.first_max = first_max;
  w.acked = acked;
  return w;
}

TEST(LogBoundsTest, ALogReachingTheAcknowledgedLsnIsValid) {
  EXPECT_TRUE(CheckLogBounds(Log(1, 10), Want(1, 1, 10)).ok);
  EXPECT_TRUE(CheckLogBounds(Log(1, 12), Want(1, 1, 10)).ok);  // unacked kept
}

TEST(LogBoundsTest, ALogEndingBeforeTheAcknowledgedLsnLostRecords) {
  const LogBoundsVerdict v = CheckLogBounds(Log(1, 7), Want(1, 1, 10));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_lsn, 8u);
  EXPECT_EQ(v.acked_lost, 3u);
  EXPECT_NE(v.error.find("first bad LSN 8"), std::string::npos) << v.error;
}

TEST(LogBoundsTest, ATruncationCutShortMayOrMayNotHaveTakenEffect) {
  // TruncateBefore(5) was asked for; the known-durable floor is 3.
  EXPECT_TRUE(CheckLogBounds(Log(3, 10), Want(3, 5, 10)).ok);
  EXPECT_TRUE(CheckLogBounds(Log(5, 10), Want(3, 5, 10)).ok);
  EXPECT_FALSE(CheckLogBounds(Log(2, 10), Want(3, 5, 10)).ok);  // below floor
  const LogBoundsVerdict v = CheckLogBounds(Log(7, 10), Want(3, 5, 10));
  EXPECT_FALSE(v.ok);  // a hole at the front
  EXPECT_EQ(v.first_bad_lsn, 5u);
  EXPECT_EQ(v.acked_lost, 2u);
}

TEST(LogBoundsTest, AnEmptyLogIsValidOnlyIfNothingAtOrAboveTheFloorWasAcked) {
  RecoveredLogBounds empty;
  empty.next_lsn = 5;
  EXPECT_TRUE(CheckLogBounds(empty, Want(5, 5, 4)).ok);
  LogBoundsVerdict v = CheckLogBounds(empty, Want(5, 5, 6));
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.acked_lost, 2u);
  empty.next_lsn = 9;  // an empty log must continue at the floor
  EXPECT_FALSE(CheckLogBounds(empty, Want(5, 5, 4)).ok);
  // Unknown first_min (wal_stress): the next LSN is not checked.
  EXPECT_TRUE(CheckLogBounds(empty, Want(0, 5, 4)).ok);
}

TEST(LogBoundsTest, NextLsnMustFollowTheLastRecord) {
  RecoveredLogBounds b = Log(1, 10);
  b.next_lsn = 12;
  EXPECT_FALSE(CheckLogBounds(b, Want(1, 1, 10)).ok);
  b.next_lsn = 0;  // not known
  EXPECT_TRUE(CheckLogBounds(b, Want(1, 1, 10)).ok);
}

}  // namespace
}  // namespace testutil
}  // namespace segwal
