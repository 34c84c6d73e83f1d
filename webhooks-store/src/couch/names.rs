//! KAZOO's database names, and the months of its monthly databases (MODBs).

use webhooks_core::time::{civil_from_days, days_from_civil, gregorian_to_unix};
use webhooks_core::AccountId;

/// Every webhook document, all accounts together.
pub(super) const WEBHOOKS: &str = "webhooks";
/// A copy of every account document (KAZOO's aggregate, what its account views read).
pub(super) const ACCOUNTS: &str = "accounts";
/// `system_config/<category>`.
pub(super) const SYSTEM_CONFIG: &str = "system_config";
/// kazoo_auth's signing keys: `system_auth/<kid>` with attachment `private_key.pem`.
pub(super) const SYSTEM_AUTH: &str = "system_auth";

/// The account's own database, `account/xx/yy/rest`.
pub(super) fn account_db(account: &AccountId) -> String {
    account.db_name()
}

/// A month as KAZOO's MODB suffix reads it: `year * 100 + month` (`202401`).
pub(super) type Month = i64;

/// The account's database of `month`, `account/xx/yy/rest-YYYYMM`.
pub(super) fn modb(account: &AccountId, month: Month) -> String {
    format!("{}-{month:06}", account.db_name())
}

/// A database name as KAZOO writes it into `pvt_account_db`: `/` spelt `%2F`.
pub(super) fn encoded(name: &str) -> String {
    name.replace('/', "%2F")
}

/// The month a gregorian second falls in; seconds before year 0 or after 9999 count as the
/// first or last month (a range's open ends are `i64::MIN` and `i64::MAX`).
pub(super) fn month_of(gregorian: i64) -> Month {
    let gregorian = gregorian.clamp(0, month_start(1_000_001) - 1);
    let days = gregorian_to_unix(gregorian).div_euclid(86_400);
    let (year, month) = civil_from_days(days);
    year * 100 + month
}

/// The first gregorian second of `month`.
pub(super) fn month_start(month: Month) -> i64 {
    let (year, m) = (month.div_euclid(100), month.rem_euclid(100));
    webhooks_core::time::unix_to_gregorian(days_from_civil(year, m) * 86_400)
}

/// The first gregorian second after `month`.
pub(super) fn month_end(month: Month) -> i64 {
    month_start(next_month(month))
}

pub(super) fn next_month(month: Month) -> Month {
    if month.rem_euclid(100) == 12 {
        month + 89
    } else {
        month + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_core::time::unix_to_gregorian;

    #[test]
    fn months_follow_the_calendar() {
        // 2024-01-01T00:00:00Z, and the second before it.
        let jan = unix_to_gregorian(1_704_067_200);
        assert_eq!(month_of(jan), 202401);
        assert_eq!(month_of(jan - 1), 202312);
        assert_eq!(month_start(202401), jan);
        assert_eq!(month_end(202312), jan);
        assert_eq!(next_month(202412), 202501);
        // Gregorian second 1000 is in January of year 0.
        assert_eq!(month_of(1000), 1);
        assert_eq!(month_start(1), 0);
    }

    #[test]
    fn names_are_kazoos() {
        let a = AccountId::parse("4a4fc2bb0a3a7b4f0ff8c1b8e1a2b3c4").unwrap();
        assert_eq!(
            modb(&a, 202401),
            "account/4a/4f/c2bb0a3a7b4f0ff8c1b8e1a2b3c4-202401"
        );
        assert_eq!(
            encoded(&modb(&a, 1)),
            "account%2F4a%2F4f%2Fc2bb0a3a7b4f0ff8c1b8e1a2b3c4-000001"
        );
    }
}
