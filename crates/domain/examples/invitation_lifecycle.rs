//! An invitation's lifecycle, told with the domain's rules alone: who may invite, the
//! checked request, the status as time passes, a resend, an acceptance, and the rules
//! that refuse a second change.
//!
//! Run it with `cargo run -p domain --example invitation_lifecycle`.

use domain::invitation::{
    AcceptRequest, Invitation, InvitationStatus, InviteRequest, check_accept, check_invite,
};
use domain::organization::TreeNode;
use domain::{
    Access, Action, Actor, Duration, Input, InvitationId, OrganizationId, Role, Timestamp, UserId,
    authorize,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = TreeNode {
        id: OrganizationId::new(1),
        parent: None,
    };
    let child = TreeNode {
        id: OrganizationId::new(2),
        parent: Some(root.id),
    };
    let administrator = Actor {
        user_id: UserId::new(10),
        role: Role::Administrators,
        organization: root,
        request_id: None,
    };
    let manager = Actor {
        role: Role::Managers,
        ..administrator
    };

    println!("Who may invite into organization {}?", child.id);
    for actor in [administrator, manager] {
        let access = authorize(&actor, Action::ManageInvitations, child);
        println!("  a member of {} among {}: {access:?}", root.id, actor.role);
    }
    let request = InviteRequest {
        identifier: Input::Value(" Ada@Example.COM ".to_owned()),
        role: Input::Value("managers".to_owned()),
        expires_in_days: Input::Value(3),
    };
    let terms = check_invite(request, Duration::days(7)).map_err(|e| format!("{e:?}"))?;
    println!(
        "\nChecked request: invite {} as {} for {} days",
        terms.identifier,
        terms.role,
        terms.valid_for.num_days()
    );

    let sent = Timestamp::from_timestamp(1_714_564_800, 0).ok_or("a valid instant")?;
    let mut invitation = Invitation {
        id: InvitationId::new(7),
        organization_id: child.id,
        identifier: terms.identifier,
        role: terms.role,
        invited_by: None,
        created_at: sent,
        expires_at: sent + terms.valid_for,
        accepted_at: None,
        revoked_at: None,
    };
    println!("\nThe status follows the clock (the domain never reads it):");
    for days in [0, 2, 3, 5] {
        let now = sent + Duration::days(days);
        println!("  day {days}: {}", invitation.status(now).as_str());
    }

    let day_five = sent + Duration::days(5);
    invitation.check_resend(day_five)?;
    invitation.expires_at = day_five + Duration::days(7);
    println!(
        "\nResent on day 5: {} again, until {}",
        invitation.status(day_five).as_str(),
        invitation.expires_at.format("%Y-%m-%d")
    );

    let acceptance = check_accept(AcceptRequest {
        token: Input::Value("token-from-the-e-mail".to_owned()),
        password: Input::Value("correct horse battery".to_owned()),
        first_name: Input::Value("Ada".to_owned()),
        last_name: Input::Value("Lovelace".to_owned()),
    })
    .map_err(|e| format!("{e:?}"))?;
    let day_six = sent + Duration::days(6);
    invitation.accepted_at = Some(day_six);
    println!(
        "Accepted on day 6 by {} {}: {}",
        acceptance.first_name.as_str(),
        acceptance.last_name.as_str(),
        invitation.status(day_six).as_str()
    );
    assert_eq!(invitation.status(day_six), InvitationStatus::Accepted);

    match invitation.check_revoke(day_six) {
        Ok(()) => println!("Revoking it now would work"),
        Err(conflict) => println!("Revoking it now is refused: {conflict}"),
    }
    let refused = check_accept(AcceptRequest::default()).err();
    let missing: Vec<&str> = refused
        .iter()
        .flat_map(|errors| errors.fields().map(|(field, _)| field))
        .collect();
    println!("An empty acceptance is refused on: {}", missing.join(", "));
    assert_eq!(
        authorize(&manager, Action::ManageInvitations, child),
        Access::Forbidden
    );
    Ok(())
}
