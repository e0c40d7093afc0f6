/* A semaphore peer that no Go code wrote: peer FD TAKE GIVE takes TAKE
 * permits from the eventfd FD with read(2), then gives GIVE with write(2).
 * The descriptor is non-blocking, so it waits with poll(2) and treats
 * EAGAIN as "another process was faster: wait again". */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: peer FD TAKE GIVE\n");
		return 2;
	}
	int fd = atoi(argv[1]);
	long take = atol(argv[2]), give = atol(argv[3]);
	for (long i = 0; i < take;) {
		uint64_t u;
		ssize_t n = read(fd, &u, sizeof u);
		if (n == sizeof u) {
			if (u != 1) {
				fprintf(stderr, "read %llu from a semaphore eventfd\n", (unsigned long long)u);
				return 1;
			}
			i++;
			continue;
		}
		if (n < 0 && errno != EAGAIN) {
			perror("read");
			return 1;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			perror("poll");
			return 1;
		}
	}
	if (give > 0) {
		uint64_t u = (uint64_t)give;
		if (write(fd, &u, sizeof u) != sizeof u) {
			perror("write");
			return 1;
		}
	}
	printf("took %ld gave %ld\n", take, give);
	return 0;
}
