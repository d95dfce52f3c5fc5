// segwal::port::Mutex / MutexLock / CondVar: absl::Mutex, made visible to
// ThreadSanitizer.
//
// The Abseil segwal links is Debian's shared library, built without TSan. TSan
// therefore cannot see the happens-before edges absl::Mutex creates, and reports
// a race on every piece of data a mutex guards. These wrappers announce each
// lock and unlock to TSan (its public mutex annotation API); in other builds
// they compile down to the plain absl calls. Use them instead of absl::Mutex in
// segwal code. Thread-safety annotations work as with absl::Mutex.

#ifndef SEGWAL_PORT_MUTEX_H_
#define SEGWAL_PORT_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#if defined(__SANITIZE_THREAD__)
#define SEGWAL_PORT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEGWAL_PORT_TSAN 1
#endif
#endif
#if defined(SEGWAL_PORT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace segwal {
namespace port {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  // For objects with static storage duration.
  explicit constexpr Mutex(absl::ConstInitType) : mu_(absl::kConstInit) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
#if defined(SEGWAL_PORT_TSAN)
  ~Mutex() { __tsan_mutex_destroy(this, 0); }
#endif

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
#if defined(SEGWAL_PORT_TSAN)
    __tsan_mutex_pre_lock(this, 0);
    mu_.Lock();
    __tsan_mutex_post_lock(this, 0, 0);
#else
    mu_.Lock();
#endif
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
#if defined(SEGWAL_PORT_TSAN)
    __tsan_mutex_pre_unlock(this, 0);
    mu_.Unlock();
    __tsan_mutex_post_unlock(this, 0);
#else
    mu_.Unlock();
#endif
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
#if defined(SEGWAL_PORT_TSAN)
    __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
    mu_.ReaderLock();
    __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
#else
    mu_.ReaderLock();
#endif
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() {
#if defined(SEGWAL_PORT_TSAN)
    __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
    mu_.ReaderUnlock();
    __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
#else
    mu_.ReaderUnlock();
#endif
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

 private:
  friend class CondVar;
  absl::Mutex mu_;
};

// Holds an exclusive lock for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// Holds a shared lock for its scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable for port::Mutex. Wait releases and reacquires the mutex;
// TSan is told so, which gives the waiter the happens-before edge from the
// thread that changed the state under the mutex and signalled.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // REQUIRES: mu is held. Spurious wake-ups are possible: wait in a loop.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
#if defined(SEGWAL_PORT_TSAN)
    __tsan_mutex_pre_unlock(mu, 0);
    __tsan_mutex_post_unlock(mu, 0);
    cv_.Wait(&mu->mu_);
    __tsan_mutex_pre_lock(mu, 0);
    __tsan_mutex_post_lock(mu, 0, 0);
#else
    cv_.Wait(&mu->mu_);
#endif
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
};

}  // namespace port
}  // namespace segwal

#endif  // SEGWAL_PORT_MUTEX_H_
