/* check_main.c -- runs one concept's Check suite; the suite's function is
 * named by CG_SUITE (test_tensor.c -> tensor_suite). The verdict is the
 * exit status. */
#include <check.h>
#include <stdlib.h>

Suite *CG_SUITE(void);

int main(void)
{
    SRunner *sr = srunner_create(CG_SUITE());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
