/*
 * test_probeslots - unit tests for common/probeslots.c: the probe slots of
 * the whole process (one table for every probes engine).
 *
 * Tests:
 *	test_bounds         per network and in all, which bound refuses
 *	test_lower_bound    a new, lower configuration while more run than
 *	                    it allows: nothing new starts until below it
 *	test_two_engines    two "engines" taking slots of one network: the
 *	                    bound is the process's, not each one's
 *	test_notify         a give wakes every other watcher with the key,
 *	                    never the giver's own; an unwatched one no more
 */
#include "unit.h"

#include <string.h>

#include "probeslots.h"

static void
test_bounds(void **state)
{
    int run, net;

    (void)state;
    probeslots_configure(3, 2);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_NETWORK_BUSY);
    assert_int_equal(probeslots_take("198.51.100/24"), PROBESLOTS_OK);
    assert_int_equal(probeslots_take("203.0.113/24"), PROBESLOTS_ALL_BUSY);
    probeslots_counts(&run, &net);
    assert_int_equal(run, 3);
    assert_int_equal(net, 2);
    probeslots_give("192.0.2/24");
    assert_int_equal(probeslots_take("203.0.113/24"), PROBESLOTS_OK);
    probeslots_give("192.0.2/24");
    probeslots_give("198.51.100/24");
    probeslots_give("203.0.113/24");
    /* A give of a network with nothing running changes nothing. */
    probeslots_give("203.0.113/24");
    probeslots_counts(&run, &net);
    assert_int_equal(run, 0);
    assert_int_equal(net, 0);
}

static void
test_lower_bound(void **state)
{
    int run, net;

    (void)state;
    probeslots_configure(4, 2);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    assert_int_equal(probeslots_take("198.51.100/24"), PROBESLOTS_OK);
    /* A reload: the newest configuration's bounds. */
    probeslots_configure(2, 1);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_NETWORK_BUSY);
    assert_int_equal(probeslots_take("203.0.113/24"), PROBESLOTS_ALL_BUSY);
    probeslots_give("192.0.2/24");
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_NETWORK_BUSY);
    assert_int_equal(probeslots_take("203.0.113/24"), PROBESLOTS_ALL_BUSY);
    probeslots_give("192.0.2/24");
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    probeslots_counts(&run, &net);
    assert_int_equal(run, 2);
    assert_int_equal(net, 1);
    probeslots_give("192.0.2/24");
    probeslots_give("198.51.100/24");
}

static void
test_two_engines(void **state)
{
    (void)state;
    /* Each engine would have allowed one to the /24 itself. */
    probeslots_configure(4, 1);
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);	/* the old engine */
    probeslots_configure(3, 1);						/* the reload */
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_NETWORK_BUSY); /* the new one */
    probeslots_give("192.0.2/24");
    assert_int_equal(probeslots_take("192.0.2/24"), PROBESLOTS_OK);
    probeslots_give("192.0.2/24");
}

struct seen {
    int calls;
    char key[48];
};

static void
wake(void *arg, const char *key)
{
    struct seen *s = arg;

    s->calls++;
    snprintf(s->key, sizeof(s->key), "%s", key);
}

static void
test_notify(void **state)
{
    struct seen a = {0, ""}, b = {0, ""};
    struct probeslots_watcher wa = {wake, &a, NULL}, wb = {wake, &b, NULL};

    (void)state;
    probeslots_watch(&wa);
    probeslots_watch(&wb);
    probeslots_notify("192.0.2/24", &wa);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.key, "192.0.2/24");
    probeslots_notify("198.51.100/24", &wb);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.key, "198.51.100/24");
    probeslots_unwatch(&wb);
    probeslots_notify("203.0.113/24", NULL);
    assert_int_equal(a.calls, 2);
    assert_int_equal(b.calls, 1);
    probeslots_unwatch(&wa);
    probeslots_notify("203.0.113/24", NULL);
    assert_int_equal(a.calls, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_lower_bound),
        cmocka_unit_test(test_two_engines),
        cmocka_unit_test(test_notify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
