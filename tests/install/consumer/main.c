/* A program built against the installed cgrad: torch.manual_seed(42);
 * print(torch.randn(2, 3)). */
#include <cgrad.h>

int main(void)
{
    cg_manual_seed(42);
    cg_tensor *x = NULL;
    int64_t shape[] = {2, 3};
    if (cg_randn(shape, 2, CG_FLOAT32, NULL, &x) != CG_OK) {
        cg_print_last_error(stderr);
        return 1;
    }
    cg_status st = cg_tensor_print(x, stdout);
    cg_tensor_release(x);
    return st == CG_OK ? 0 : 1;
}
