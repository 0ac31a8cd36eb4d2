/*
 * guard.hpp
 *		The C++/PostgreSQL boundary (DESIGN.md section 7, STYLE.md rules 5-9).
 *
 * Two zones. PG-zone code (every AM callback and SQL function shell) may call PostgreSQL
 * and must hold only trivially destructible locals; it enters C++ through vs::pg::invoke(),
 * which catches every exception, copies what it needs onto the stack, leaves the catch
 * block and only then reports. C++-zone code may throw and use RAII; it calls PostgreSQL
 * only through vs::pg::call(), which turns an ereport longjmp into a PgError exception that
 * carries the ErrorData (so the SQLSTATE survives) to the invoke boundary, where it is
 * re-thrown with ReThrowError.
 *
 * Include this after the engine headers and after "diskann.hpp" (which includes postgres.h).
 */
#pragma once

#include <csetjmp>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "vectorscale/core/error.hpp"

namespace vs::pg {

/* A PostgreSQL error caught by call(), carried to invoke(); owns nothing. */
class PgError final : public std::exception
{
  public:
	explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
	ErrorData *edata() const noexcept { return edata_; }
	const char *what() const noexcept override
	{
		return edata_ != nullptr && edata_->message != nullptr ? edata_->message : "PostgreSQL error";
	}

  private:
	ErrorData *edata_;
};

/* What invoke() caught, copied out of the exception before it is destroyed. */
struct CaughtError
{
	ErrorData  *carried;		/* a PgError's data, re-thrown as is */
	bool		cancelled;		/* vs::Cancelled */
	int			sqlerrcode;		/* otherwise: the SQLSTATE to report */
	char		message[1024];
};

/* Reports a caught error in PG context; never returns. */
[[noreturn]] void report_caught(const CaughtError *caught);

/* Records the exception being handled (called inside a catch block; copies only). */
void record_current_exception(CaughtError *caught) noexcept;

/*
 * PG zone -> C++ zone: runs fn() and turns any exception into a PostgreSQL ERROR after the
 * exception object is gone (STYLE.md rule 6).
 */
template <class Fn>
auto
invoke(Fn &&fn) -> decltype(fn())
{
	CaughtError caught;

	try
	{
		return fn();
	}
	catch (...)
	{
		record_current_exception(&caught);
	}
	report_caught(&caught);
}

/* Saves and restores the error-handling globals around a guarded PostgreSQL call. */
struct SavedErrorState
{
	sigjmp_buf *exception_stack;
	ErrorContextCallback *context_stack;
	MemoryContext memory_context;
};

/* Turns the current PostgreSQL error into a PgError (after restoring saved state). */
[[noreturn]] void rethrow_as_pg_error(const SavedErrorState &saved);

/*
 * C++ zone -> PG zone: calls fn() (PostgreSQL functions, or a PG-zone lambda that captures
 * only references) and converts an ereport(ERROR) into a thrown PgError. fn must not throw
 * C++ exceptions and must not leave live objects with destructors on its own frames. Call it
 * only on the backend's main thread (STYLE.md rule 7).
 */
template <class Fn>
auto
call(Fn &&fn) -> decltype(fn())
{
	SavedErrorState saved{PG_exception_stack, error_context_stack, CurrentMemoryContext};
	sigjmp_buf	local;

	if (sigsetjmp(local, 0) == 0)
	{
		PG_exception_stack = &local;
		if constexpr (std::is_void_v<decltype(fn())>)
		{
			fn();
			PG_exception_stack = saved.exception_stack;
			return;
		}
		else
		{
			static_assert(std::is_trivially_destructible_v<decltype(fn())>,
						  "a longjmp must not skip a destructor");
			auto		result = fn();

			PG_exception_stack = saved.exception_stack;
			return result;
		}
	}
	rethrow_as_pg_error(saved);
}

/* Maps an engine error code onto a SQLSTATE. */
int			sqlstate_of(vs::ErrorCode code) noexcept;

}							/* namespace vs::pg */

/* Failure points (test builds only): VS_FAILURE_POINT("name") is true when armed. */
#ifdef VS_FAILURE_POINTS
namespace vs::pg {
bool		failure_point_armed(const char *name) noexcept;
}
#define VS_FAILURE_POINT(name) (::vs::pg::failure_point_armed(name))
#else
#define VS_FAILURE_POINT(name) (false)
#endif
