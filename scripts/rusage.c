// make bench's exec meter: runs ARGV as a child forked from this small static program and writes to OUTFILE
// that child's own wall time (fork to reap), CPU time (user + sys) and peak RSS, as wait4 reports them, and
// its exit status, as one JSON object. Why a separate program: a harness that spawns with vfork or
// posix_spawn (Bun's spawnSync, node's child_process) shares its memory with the child until exec, and the
// kernel folds the harness's peak RSS into the child's (/bin/true reads 22 MiB under Bun's spawnSync, 1 MiB
// under GNU time). Forked from here, a child's peak starts from this program's few hundred KiB, the same for
// every plugin measured; `make bench` reports /bin/true's reading as the floor.
// The child's stdin is a pipe written after the fork, the way Go runtimes (containerd, CRI-O, libcni) hand a
// plugin its config: this program reads all of its own stdin first (before the clock starts) and feeds it.
//
// usage: rusage OUTFILE ARGV...   (stdout, stderr and the environment pass through to the child)
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rusage OUTFILE ARGV...\n");
    return 2;
  }
  size_t len = 0, cap = 1 << 16;
  char *input = malloc(cap);
  for (ssize_t n; input && (n = read(0, input + len, cap - len)) > 0;) {
    len += (size_t)n;
    if (len == cap) input = realloc(input, cap *= 2);
  }
  int fds[2];
  if (!input || pipe(fds) < 0) {
    perror("rusage: stdin");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); // a child that exits without reading all of stdin is measured all the same
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("rusage: fork");
    return 2;
  }
  if (pid == 0) {
    dup2(fds[0], 0);
    close(fds[0]);
    close(fds[1]);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[2], argv + 2);
    perror("rusage: exec");
    _exit(127);
  }
  close(fds[0]);
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fds[1], input + off, len - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(fds[1]);
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("rusage: wait4");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    perror("rusage: OUTFILE");
    return 2;
  }
  double wall = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
  double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  fprintf(out, "{\"wallMs\":%.3f,\"cpuMs\":%.3f,\"maxRssKiB\":%ld,\"status\":%d}\n", wall, cpu, ru.ru_maxrss, code);
  fclose(out);
  return code;
}
