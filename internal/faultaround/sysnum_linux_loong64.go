package faultaround

// sysUserfaultfd is userfaultfd(2)'s number, which package syscall does
// not define.
const sysUserfaultfd = 282
