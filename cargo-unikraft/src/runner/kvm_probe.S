/*
 * The KVM probe guest: a few instructions that do what an x86_64 unikernel does first,
 * booted by `cargo xtask` under `qemu -accel kvm` before it trusts KVM with an image.
 *
 * Some hosts open /dev/kvm and create vCPUs fine, yet cannot run a real guest: on a
 * nested, paravirtualized KVM (seen here), the first SSE instruction that touches memory
 * (Unikraft's boot loads MXCSR from its image) ends in "KVM internal error ... emulation
 * failure" and QEMU stops the VM without exiting. So the probe goes the same way: from
 * QEMU's multiboot entry (32-bit, no paging) to long mode with identity-mapped 2 MiB
 * pages, enables SSE, loads MXCSR from memory, uses an XMM register, and reports success
 * through isa-debug-exit (QEMU exits with status (0x2a << 1) | 1 = 85).
 *
 * Loaded with the multiboot "a.out kludge" (flag bit 16): QEMU copies the flat binary to
 * the addresses in the header, so no ELF32 toolchain is needed.
 */
	.section .text
	.code32
	.globl _start
mb_header:
	.long 0x1BADB002                     /* multiboot magic */
	.long 0x00010000                     /* flags: the header gives the load addresses */
	.long -(0x1BADB002 + 0x00010000)     /* checksum */
	.long mb_header                      /* header_addr */
	.long mb_header                      /* load_addr */
	.long 0                              /* load_end_addr: the whole file */
	.long 0                              /* bss_end_addr: none */
	.long _start                         /* entry_addr */
_start:
	cli
	/* PML4[0] -> PDPT, PDPT[0] -> PD, PD maps the first 1 GiB with 2 MiB pages. */
	movl $pml4, %edi
	movl $pdpt, %eax
	orl $3, %eax
	movl %eax, (%edi)
	movl $pdpt, %edi
	movl $pd, %eax
	orl $3, %eax
	movl %eax, (%edi)
	movl $pd, %edi
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax                      /* present, writable, 2 MiB page */
	movl %eax, (%edi,%ecx,8)
	incl %ecx
	cmpl $512, %ecx
	jne 1b
	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax                      /* CR4.PAE */
	movl %eax, %cr4
	movl $0xC0000080, %ecx               /* EFER */
	rdmsr
	orl $0x100, %eax                     /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax                /* CR0.PG | CR0.PE */
	movl %eax, %cr0
	lgdt gdt_ptr
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movq %cr0, %rax
	andq $~4, %rax                       /* CR0.EM off */
	orq $2, %rax                         /* CR0.MP on */
	movq %rax, %cr0
	movq %cr4, %rdi
	orl $0x600, %edi                     /* CR4.OSFXSR | CR4.OSXMMEXCPT */
	movq %rdi, %cr4
	movl $mxcsr, %ebx
	addr32 ldmxcsr (%ebx)                /* the instruction that fails on a broken host */
	movaps %xmm0, %xmm1
	movb $0x2a, %al
	outb %al, $0xf4                      /* isa-debug-exit */
2:	hlt
	jmp 2b

	.align 8
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF             /* 64-bit code */
	.quad 0x00CF92000000FFFF             /* data */
gdt_ptr:
	.word gdt_ptr - gdt - 1
	.long gdt
mxcsr:
	.long 0x1f80                         /* MXCSR's reset value */
	.align 4096
pml4:	.fill 4096, 1, 0
pdpt:	.fill 4096, 1, 0
pd:	.fill 4096, 1, 0
