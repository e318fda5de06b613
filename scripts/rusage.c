// make bench's exec meter: runs ARGV as a child forked from this small static program and writes to OUTFILE
// that child's own wall time (fork to reap), CPU time (user + sys) and peak RSS, as wait4 reports them, and
// its exit status, as one JSON object. Why a separate program: a harness that spawns with vfork or
// posix_spawn (Bun's spawnSync, node's child_process) shares its memory with the child until exec, and the
// kernel folds the harness's peak RSS into the child's (/bin/true reads 22 MiB under Bun's spawnSync, 1 MiB
// under GNU time). Forked from here, a child's peak starts from this program's few hundred KiB, the same for
// every plugin measured; `make bench` reports /bin/true's reading as the floor.
//
// usage: rusage OUTFILE ARGV...   (stdin, stdout, stderr and the environment pass through to the child)
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rusage OUTFILE ARGV...\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("rusage: fork");
    return 2;
  }
  if (pid == 0) {
    execv(argv[2], argv + 2);
    perror("rusage: exec");
    _exit(127);
  }
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
