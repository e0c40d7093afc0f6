// Package kernelaio makes the kernel itself write to an eventfd, so that
// tests and examples can show a notifier that no code of ours wrote.
//
// Read submits one Linux native AIO request (io_submit(2)): an
// IOCB_CMD_PREAD of a file with IOCB_FLAG_RESFD set, which tells the kernel
// to add 1 to the given eventfd when the read completes. The write to the
// eventfd comes from the kernel's AIO completion path, not from user space.
//
// The request layout is written for linux/amd64. On every other platform
// Read returns an error that satisfies errors.Is(err, errors.ErrUnsupported).
package kernelaio
