/*
 * guard.cpp
 *		The out-of-line halves of the C++/PostgreSQL guards, and failure points.
 */
#include <cstring>
#include <new>
#include <stdexcept>

#include "vectorscale/core/error.hpp"

#include "../diskann.hpp"

#include "guard.hpp"

namespace vs::pg {

int
sqlstate_of(vs::ErrorCode code) noexcept
{
	switch (code)
	{
		case vs::ErrorCode::kInvalidArgument:
			return ERRCODE_INVALID_PARAMETER_VALUE;
		case vs::ErrorCode::kOutOfMemory:
			return ERRCODE_OUT_OF_MEMORY;
		case vs::ErrorCode::kCancelled:
			return ERRCODE_QUERY_CANCELED;
		case vs::ErrorCode::kCorrupt:
			return ERRCODE_INDEX_CORRUPTED;
		case vs::ErrorCode::kUnsupported:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case vs::ErrorCode::kInternal:
			break;
	}
	return ERRCODE_INTERNAL_ERROR;
}

/* Copies into the fixed buffer; never allocates (we are inside a catch block). */
static void
copy_message(CaughtError *caught, const char *msg) noexcept
{
	strlcpy(caught->message, msg != nullptr ? msg : "", sizeof(caught->message));
}

void
record_current_exception(CaughtError *caught) noexcept
{
	caught->carried = nullptr;
	caught->cancelled = false;
	caught->sqlerrcode = ERRCODE_INTERNAL_ERROR;
	caught->message[0] = '\0';
	try
	{
		throw;
	}
	catch (const PgError &e)
	{
		caught->carried = e.edata();
	}
	catch (const vs::Cancelled &)
	{
		caught->cancelled = true;
	}
	catch (const vs::Error &e)
	{
		caught->sqlerrcode = sqlstate_of(e.code());
		caught->cancelled = e.code() == vs::ErrorCode::kCancelled;
		copy_message(caught, e.what());
	}
	catch (const std::bad_alloc &)
	{
		caught->sqlerrcode = ERRCODE_OUT_OF_MEMORY;
		copy_message(caught, "out of memory");
	}
	catch (const std::exception &e)
	{
		caught->sqlerrcode = ERRCODE_INTERNAL_ERROR;
		copy_message(caught, e.what());
	}
	catch (...)
	{
		caught->sqlerrcode = ERRCODE_INTERNAL_ERROR;
		copy_message(caught, "unknown C++ exception");
	}
}

void
report_caught(const CaughtError *caught)
{
	if (caught->carried != nullptr)
		ReThrowError(caught->carried);
	if (caught->cancelled)
	{
		/* The engine saw a pending interrupt: let PostgreSQL raise the proper error. */
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement due to user request")));
	}
	if (caught->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 strcmp(caught->message, "out of memory") != 0 ? errdetail("%s", caught->message) : 0));
	if (caught->sqlerrcode == ERRCODE_INTERNAL_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("diskann internal error: %s", caught->message)));
	ereport(ERROR, (errcode(caught->sqlerrcode), errmsg("%s", caught->message)));
	pg_unreachable();
}

void
rethrow_as_pg_error(const SavedErrorState &saved)
{
	ErrorData  *edata;

	PG_exception_stack = saved.exception_stack;
	error_context_stack = saved.context_stack;
	/* CopyErrorData must not run in ErrorContext, which FlushErrorState resets. */
	MemoryContextSwitchTo(saved.memory_context);
	edata = CopyErrorData();
	FlushErrorState();
	throw PgError(edata);
}

#ifdef VS_FAILURE_POINTS
bool
failure_point_armed(const char *name) noexcept
{
	return diskann_failure_point != nullptr && strcmp(diskann_failure_point, name) == 0;
}
#endif

}							/* namespace vs::pg */
