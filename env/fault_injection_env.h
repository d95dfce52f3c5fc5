// FaultInjectionEnv: an Env wrapper that simulates power loss and I/O errors,
// deterministically, so crash recovery can be tested as a loop: write, crash at
// a seeded point, reopen, compare with what was acknowledged. Modelled on
// RocksDB's FaultInjectionTestFS and LevelDB's fault_injection_test.
//
// What it records. For every file written through it: its visible size (the
// bytes written, as far as this Env knows); its durable size, the size a
// kDropUnsynced crash leaves (the synced size); and, when a handle from
// ReopenWritableFile overwrote bytes below the durable size, the durable
// pre-image of every such range (the bytes the device still holds there). A
// file's durable content is its first `synced` bytes with those pre-images put
// back; its unsynced bytes are the overwritten ranges plus [synced, size). A
// successful WritableFile::Sync of any handle of the file makes everything
// written to it so far durable: synced becomes the visible size and the
// pre-images are dropped. A file it had not seen before (opened with
// NewAppendableFile or ReopenWritableFile, renamed, truncated or deleted
// without having been written through this Env) counts as fully durable at the
// size it had at that moment; files it only reads are left alone. For every
// directory, the creates, renames and deletes of file entries since that
// directory's last successful SyncDir, and the directories CreateDirIfMissing
// created in it since then (a call that finds the directory already there
// records nothing: a directory the Env did not create counts as durable).
//
// Overwrites in place (ReopenWritableFile(path, offset)). A write through such
// a handle first reads, from the base file, the bytes it is about to replace
// that are still durable (below the durable size and not already replaced
// since the last Sync), and keeps them as pre-images, merged per file. So a
// preallocated zero-filled file keeps its size and reverts to zeros, and a
// recycled segment reverts to its OLD bytes, never to zeros. Bytes written
// beyond the durable size were never durable: they behave like appended
// unsynced bytes.
//
// What a crash does (SimulateCrash):
//   1. Every handle opened before the crash becomes stale: the base handles of
//      writable files are closed (their buffered bytes reach the base file and
//      count as unsynced), held locks are released (a power loss releases
//      them), and every later call on a pre-crash handle fails with
//      FailedPrecondition "stale handle from before SimulateCrash". Destroying
//      a stale handle never touches the post-crash files.
//   2. Each file's unsynced bytes are reverted or kept according to the
//      CrashMode (see below). Durable bytes are never changed, and no file
//      ends up shorter than its durable size.
//   3. File entries not made durable by SyncDir are undone: a file created
//      since the last SyncDir of its directory disappears; a rename brings the
//      old name back (with the content it has after step 2) and brings back the
//      file the rename replaced (with its durable content); a delete brings the
//      file back with its durable content. Entries are per directory: a rename
//      across directories needs a SyncDir of both. A name this step would bring
//      back inside a directory that step 4 removes is not brought back.
//   4. Directories whose creation was not made durable are removed: every
//      directory CreateDirIfMissing created since the last successful SyncDir
//      of its parent disappears, recursively, with everything under it after
//      step 3: files synced or not, files written straight to the base Env,
//      subdirectories (durable in it or not). So a file is lost if, after step
//      3, its only name is under such a directory (created or renamed there,
//      even if synced and its directory synced too), and survives if it keeps
//      a durable name elsewhere (a rename out of the lost directory whose
//      target directory was synced; a rename into it whose source directory
//      was not, which step 3 undoes). Nested levels each need their parent
//      synced: syncing an inner level's parent does not save it when an outer
//      level is lost.
//   5. The file system is usable again: SetFilesystemActive(true), injected
//      errors cleared, and tracking restarts with every file and directory
//      considered durable.
//
// Crash modes, for a file of `size` bytes whose durable size is `synced`. The
// unsynced bytes are taken in file-offset order: first the overwritten ranges
// below `synced`, then the tail [synced, size). To "revert" an overwritten
// byte is to put its pre-image back; to revert a tail byte is to cut it (or,
// in kTornSectors, to zero it). Without overwrites the modes are exactly what
// they were for append-only files.
//   kDropUnsynced: every unsynced byte is reverted: overwritten ranges get
//     their pre-images back and the file is cut to `synced`.
//   kTornTail: a seeded random prefix (0 to all) of the unsynced bytes, in
//     file-offset order, survives; the rest is reverted. The file keeps at
//     least `synced` bytes.
//   kTornSectors: each 512-byte sector holding unsynced bytes (sectors are
//     aligned to absolute file offsets; the durable bytes of a sector are kept
//     as is) is independently kept (new bytes), reverted (pre-images below
//     `synced`, zeros in the tail), or overwritten with seeded garbage that
//     differs both from the new bytes and from the reverted ones, each with
//     probability 1/3. Then, with probability 1/2, the file is cut right
//     after the last kept sector, but never below `synced`. So a later sector
//     can survive while an earlier one is lost, and the file may end in zeros
//     or garbage.
// Randomness is derived from (seed, path) only and files are visited in sorted
// order, so the same seed and the same history give the same bytes.
//
// TruncateFile(path, n): the visible size becomes n, the synced size becomes
// min(synced, n) and pre-images at or beyond n are dropped. A shrink is
// treated as durable at once (a crash never brings the cut bytes back;
// NewWritableFile over an existing file is a shrink to 0, which also drops
// every pre-image); the zeros added by an extending truncate are unsynced
// until the next Sync. A real file system may keep the old tail until the
// file is synced; this model does not produce that outcome.
//
// Errors. SetFilesystemActive(false, error) makes every call (on the Env and on
// its open handles) fail with `error`; FileExists returns false, NowMicros
// still works. InjectError fails chosen operations; the injected status reaches
// the caller unchanged. A failed Append (injected) does not reach the base file
// and changes no recorded state (no pre-image is taken); a failed Sync leaves
// the synced size and the pre-images unchanged. Close and Allocate fail only
// while the file system is inactive. Handles from ReopenWritableFile go
// through the same checks as other writable handles.
//
// DeleteDir. Removing a directory whose creation is not durable yet forgets
// it: its creation record and every record of the entries under it are
// dropped: nothing under a directory that never became durable can survive a
// crash, and the directory is gone whether or not a crash comes. A later
// CreateDirIfMissing of the same path is a new, unsynced creation. Removing any
// other directory is not undone by a crash (see Limits).
//
// Limits: a file written by several handles at once is tracked per file, not
// per handle (a Sync through one handle makes the writes of all of them
// durable, including one racing with it); a file removed by a delete that is
// later undone comes back with the durable content it had when it was deleted.
// Reverting an overwrite at a crash writes through the base Env's
// ReopenWritableFile (a base without it cannot produce overwrites in the first
// place). Directories are tracked only as far as CreateDirIfMissing creates
// them: renaming a directory is not tracked, and removing a durable directory
// (DeleteDir) is durable at once, except that a file whose unsynced delete
// step 3 undoes comes back and re-creates the directory it was in (one level).
// Paths are compared lexically (after collapsing slashes and a leading "./"):
// SyncDir("d") and a file created as "/abs/d/f" are not matched.
//
// Thread safety: all methods may be called from several threads at once. A
// crash waits for calls in flight to finish. REQUIRES: the FaultInjectionEnv
// outlives every handle and lock it returned; `base` outlives the
// FaultInjectionEnv.

#ifndef SEGWAL_ENV_FAULT_INJECTION_ENV_H_
#define SEGWAL_ENV_FAULT_INJECTION_ENV_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "env/env.h"
#include "port/mutex.h"

namespace segwal {

enum class CrashMode {
  kDropUnsynced,  // every byte not covered by a successful Sync is lost
  kTornTail,      // each file keeps a random prefix of its unsynced bytes
  kTornSectors,   // unsynced 512-byte sectors are independently kept,
                  // reverted (zeroed past the durable size), or filled with
                  // garbage
};

// Every crash mode, in declaration order (for tests that cycle through them).
inline constexpr CrashMode kAllCrashModes[] = {
    CrashMode::kDropUnsynced, CrashMode::kTornTail, CrashMode::kTornSectors};

// "kDropUnsynced", "kTornTail" or "kTornSectors" (for test names and traces).
const char* CrashModeName(CrashMode mode);

// Operations InjectError can fail, as a bit set.
enum FaultOp : uint32_t {
  kOpOpen = 1,        // NewWritableFile[WithOptions], NewAppendableFile,
                      // ReopenWritableFile[WithOptions], NewSequentialFile,
                      // NewRandomAccessFile, LockFile
  kOpAppend = 2,      // WritableFile::Append
  kOpFlush = 4,       // WritableFile::Flush
  kOpSync = 8,        // WritableFile::Sync
  kOpRead = 16,       // SequentialFile::Read/Skip, RandomAccessFile::Read
  kOpDelete = 32,     // DeleteFile, DeleteDir
  kOpRename = 64,     // RenameFile (matches on either path)
  kOpTruncate = 128,  // TruncateFile
  kOpSyncDir = 256,   // SyncDir
  kOpAll = 0xffffffff,
};

class FaultInjectionEnv : public Env {
 public:
  // Wraps base (usually a MemEnv or the POSIX Env); does not own it.
  explicit FaultInjectionEnv(Env* base);
  ~FaultInjectionEnv() override;

  // ---- Fault control. ----

  // Power loss: applies `mode` to every file written through this Env, removes
  // files whose creation (and undoes renames/deletes whose change) was not made
  // durable by SyncDir, removes directories whose creation was not made durable
  // by a SyncDir of their parent (with everything in them), then leaves the
  // file system usable again (see the top of this file). Same seed and same
  // history => same result, bit for bit.
  // Returns the first error the base Env reported while rewriting files; the
  // crash is still applied as far as possible and tracking restarts either way.
  absl::Status SimulateCrash(CrashMode mode, uint64_t seed);

  // While inactive, every call fails with `error` (models a dead disk / frozen
  // process). An OK `error` is replaced by Unavailable.
  void SetFilesystemActive(
      bool active,
      absl::Status error = absl::UnavailableError("filesystem inactive"));

  // Makes the matching operations fail with `error`. ops: a bit set of FaultOp;
  // a call matches when its op is in `ops` and its path contains path_substring
  // ("" matches all; a handle's path is the one it was opened with). The first
  // `skip` matching calls pass; the next `count` fail (count < 0: forever).
  // Several injections may be active; a call is checked against them in the
  // order they were added, and the first one that fires decides the error
  // (later injections do not see that call). An OK `error` is replaced by
  // Unavailable.
  void InjectError(uint32_t ops, absl::Status error,
                   std::string path_substring = "", int64_t skip = 0,
                   int64_t count = 1);
  void ClearInjectedErrors();

  // ---- Introspection, for tests. ----

  bool IsFilesystemActive() const;
  // Calls made of the operations in `ops` (a FaultOp bit set) through this Env
  // and its non-stale handles since construction, including calls that failed.
  uint64_t OpCount(uint32_t ops) const;
  // Number of SimulateCrash calls so far.
  uint64_t CrashCount() const;
  // The durable size of `path`: the size a kDropUnsynced crash would leave (not
  // counting directory-entry loss). A file never written through this Env
  // reports its current size. NotFound if the file does not exist.
  absl::StatusOr<uint64_t> SyncedSize(const std::string& path) const;
  // The bytes a kDropUnsynced crash would leave in `path` (not counting
  // directory-entry loss): its first SyncedSize bytes with the pre-images of
  // unsynced overwrites put back. A file never written through this Env
  // reports its current content. NotFound if the file does not exist.
  absl::StatusOr<std::string> DurableContent(const std::string& path) const;
  // Bytes the file holds as far as this Env knows, including unsynced ones (may
  // exceed GetFileSize while a base handle buffers). NotFound if missing.
  absl::StatusOr<uint64_t> AppendedSize(const std::string& path) const;
  // Paths (sorted) of files with unsynced bytes: an appended size beyond the
  // synced size, or an overwrite not yet synced.
  std::vector<std::string> FilesWithUnsyncedData() const;
  // What the last SimulateCrash did to the sectors holding unsynced bytes in
  // kTornSectors mode (all zero after a crash in another mode), so tests can
  // check each sector's fate against its bytes.
  struct TornSectorCounts {
    uint64_t kept = 0;
    uint64_t reverted = 0;  // pre-images put back, tail bytes zeroed
    uint64_t garbled = 0;
  };
  TornSectorCounts LastCrashTornSectors() const;
  // Paths (sorted) whose directory entry differs from its durable state: files
  // created, renamed to, renamed away or deleted, and directories created,
  // since the last SyncDir of the directory holding the entry.
  std::vector<std::string> UnsyncedDirEntries() const;
  Env* base() const { return base_; }

  // ---- Env: forwards to base while recording (see above). ----

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override;
  absl::Status TruncateFile(const std::string& path, uint64_t size) override;
  // Records the directory as created, not yet durable, when the base did not
  // have it (see the top of this file).
  absl::Status CreateDirIfMissing(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  // Forwards to the base (Unimplemented if it cannot overwrite in place); see
  // the top of this file for how the overwritten bytes are tracked.
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path, uint64_t offset) override;
  // The *WithOptions opens pass the options to the base (MemEnv ignores
  // them; the POSIX Env honours them) and track the file exactly as the plain
  // opens do: the model stays buffered append/overwrite semantics. The zero
  // padding a direct-I/O base writes after Size() in a partial block
  // (posix_env.h) is not tracked: no caller wrote those bytes.
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFileWithOptions(
      const std::string& path, const FileOptions& options) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFileWithOptions(
      const std::string& path, uint64_t offset,
      const FileOptions& options) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(
      const std::string& path) override;
  absl::Status UnlockFile(std::unique_ptr<FileLock> lock) override;
  // Forgets a directory whose creation was not durable yet (see "DeleteDir"
  // at the top of this file).
  absl::Status DeleteDir(const std::string& dir) override;
  uint64_t NowMicros() override;

 private:
  class WritableHandle;
  class SequentialHandle;
  class RandomAccessHandle;
  class LockHandle;

  // What this Env knows about one file (an inode: it keeps its identity across
  // renames). Files are numbered from 1 in the order this Env first sees them.
  struct FileState {
    uint64_t size = 0;    // visible size, as far as this Env knows
    uint64_t synced = 0;  // durable size; <= size
    // Offset -> the durable bytes an unsynced overwrite replaced there. Ranges
    // are disjoint, never adjacent (merged), and below `synced`.
    std::map<uint64_t, std::string> preimages;
    std::string live_path;  // normalized path it has now; "" once unlinked
    // Number of undo records (undo_) that would bring this file back. When it
    // drops to zero and the file is unlinked, the state is forgotten.
    int undo_refs = 0;
    // The durable content, captured when the file lost its last name while an
    // undo record still refers to it (the base file is gone then).
    bool has_saved_bytes = false;
    std::string saved_bytes;
  };
  // A name bound to a file: the file's number and the path as the caller
  // spelled it (used for base calls, so a base Env that does not normalize
  // paths works).
  struct Binding {
    uint64_t file = 0;
    std::string raw_path;
  };
  struct Injection {
    uint32_t ops;
    absl::Status error;
    std::string path_substring;
    int64_t skip;
    int64_t count;
  };

  // Counts the call and returns the error it must fail with: the inactive
  // error, or the error of the first injection that fires. OK if the call may
  // proceed. `op` 0 means "not injectable" (only the active check applies).
  absl::Status CheckOp(uint32_t op, const std::string& path,
                       const std::string& path2 = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The file bound to `norm`, registering an untracked existing file as fully
  // durable at its current size. 0 if the base has no such file.
  uint64_t TrackExisting(const std::string& norm, const std::string& raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new file of size 0 bound to `norm`.
  uint64_t AddFile(const std::string& norm, const std::string& raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remembers the durable binding of `norm` before its first change since the
  // last SyncDir of its directory.
  void RecordDirChange(const std::string& norm, const std::string& raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Before `file` loses its last name: keeps its durable content if an undo
  // record may bring it back.
  absl::Status SaveBytesIfUndoable(uint64_t file, const std::string& raw)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the name `norm`; forgets its file if nothing can bring it back.
  void Unlink(const std::string& norm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetIfUnreachable(uint64_t file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops undo records (the directory's entries became durable, or the
  // directory is gone for good), forgetting files nothing can bring back.
  void ReleaseUndoRecords(const std::map<std::string, Binding>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After DeleteDir(norm): if norm's creation was not durable, forgets it and
  // every record at or under it (see "DeleteDir" at the top of this file).
  void ForgetDeletedDirectory(const std::string& norm)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A failed open may still have created or truncated the file (the POSIX Env
  // creates it before refusing O_DIRECT): records what the base did.
  void NoteFailedOpen(const std::string& norm, const std::string& raw,
                      bool existed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Shared by NewWritableFile and NewWritableFileWithOptions.
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path, const FileOptions* options);
  // Shared by ReopenWritableFile and ReopenWritableFileWithOptions.
  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritable(
      const std::string& path, uint64_t offset, const FileOptions* options);
  // ---- The crash, in order (fault_injection_crash.cc). ----

  // Step 1: closes the base handles of every writable handle (their buffered
  // bytes land), releases every held lock, and makes every pre-crash handle
  // stale. Defined beside the handles (fault_injection_env.cc).
  void DetachHandlesForCrash() ABSL_EXCLUSIVE_LOCKS_REQUIRED(crash_mu_, mu_);
  // Step 2: applies `mode` to the live file `norm` (its bytes on the base Env).
  absl::Status ApplyCrashMode(CrashMode mode, uint64_t seed,
                              const std::string& norm, const Binding& binding,
                              const FileState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 3: every file entry changed since its directory's last SyncDir goes
  // back to its durable binding, except names inside a lost directory.
  absl::Status UndoFileEntries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 4: removes every directory whose creation is not durable, with
  // everything under it.
  absl::Status RemoveLostDirectories() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the normalized path lies strictly inside a directory whose
  // creation is not durable (a lost directory at a crash).
  bool InsideLostDirectory(const std::string& norm) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The durable content of the tracked file `state`, read from `raw`.
  absl::StatusOr<std::string> ReadDurableContent(const FileState& state,
                                                 const std::string& raw) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cuts the recorded state of a file to `size` bytes, durably (see
  // TruncateFile above).
  static void ShrinkState(FileState& state, uint64_t size);

  // Handle bookkeeping, called by the handles.
  void AddAppended(uint64_t file, uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Before an overwrite of [offset, offset + n): reads, through `reader` (the
  // base file), the bytes in that range that are still durable and have no
  // pre-image yet. Appends (offset, bytes) pairs to `preimages`.
  absl::Status ReadPreimages(
      uint64_t file, const RandomAccessFile& reader, uint64_t offset,
      uint64_t n, std::vector<std::pair<uint64_t, std::string>>* preimages)
      ABSL_LOCKS_EXCLUDED(mu_);
  // After the base wrote `written` bytes at `offset`: extends the visible size
  // and keeps the pre-images (read by ReadPreimages) of the bytes written.
  void AddOverwritten(uint64_t file, uint64_t offset, uint64_t written,
                      std::vector<std::pair<uint64_t, std::string>> preimages)
      ABSL_LOCKS_EXCLUDED(mu_);

  Env* const base_;

  // Held shared by every call for its whole duration, exclusively by
  // SimulateCrash: a crash never overlaps a call in flight. Always acquired
  // before mu_.
  mutable port::SharedMutex crash_mu_;
  // Bumped by every crash; a handle whose epoch differs is stale.
  uint64_t epoch_ ABSL_GUARDED_BY(crash_mu_) = 0;

  mutable port::Mutex mu_ ABSL_ACQUIRED_AFTER(crash_mu_);
  bool active_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status inactive_error_ ABSL_GUARDED_BY(mu_);
  std::vector<Injection> injections_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, 9> op_counts_ ABSL_GUARDED_BY(mu_) = {};
  uint64_t crash_count_ ABSL_GUARDED_BY(mu_) = 0;
  TornSectorCounts torn_sectors_ ABSL_GUARDED_BY(mu_);

  uint64_t next_file_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, FileState> files_ ABSL_GUARDED_BY(mu_);
  // Normalized path -> the file bound to it now (only files this Env tracks).
  std::map<std::string, Binding> live_ ABSL_GUARDED_BY(mu_);
  // Normalized directory -> normalized path -> the binding that path had at the
  // directory's last SyncDir (file 0: the name did not exist). Only paths
  // changed since then appear.
  std::map<std::string, std::map<std::string, Binding>> undo_
      ABSL_GUARDED_BY(mu_);
  // Normalized parent directory -> normalized path -> the path as the caller
  // spelled it, of every directory CreateDirIfMissing created since the
  // parent's last successful SyncDir: a crash removes each, with all under it.
  std::map<std::string, std::map<std::string, std::string>> new_dirs_
      ABSL_GUARDED_BY(mu_);

  // Open writable handles and held locks, by creation order, so a crash can
  // detach them deterministically.
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, WritableHandle*> writable_handles_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LockHandle*> locks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace segwal

#endif  // SEGWAL_ENV_FAULT_INJECTION_ENV_H_
